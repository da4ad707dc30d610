"""The core's exceptions. Every package raises its own narrow errors, chained with ``from exc``."""

from __future__ import annotations


class DataForgeError(Exception):
    """Base of every error the core raises on purpose."""


class SettingsError(DataForgeError):
    """A required setting (environment variable or job argument) is missing or malformed."""


class ContractError(DataForgeError):
    """The contract was used wrongly (not a record failing validation: that is a ``Rejection``)."""


class ReferenceDataError(DataForgeError):
    """Reference data (merchants, FX rates) is missing or malformed."""


class LakeLayoutError(DataForgeError):
    """A lake name or key cannot be built from the given parts."""


class ServiceError(DataForgeError):
    """An embedded local service failed to start, answer or stop."""


class DependencyResolutionError(ServiceError):
    """Maven could not resolve the jars an embedded service needs."""
