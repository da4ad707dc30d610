"""The policy rules of ``checks`` as a Pulumi policy pack (``pulumi preview --policy-pack infra/policy``).

``pulumi_policy`` is imported only here, when the pack is built, so the rules themselves (and the
tests that run them on rendered stacks) need nothing beyond the program's own dependencies.

What a stack policy receives from the engine (pulumi_policy's ``_PolicyAnalyzerServicer.AnalyzeStack``):
each resource's properties come as a protobuf ``Struct`` (``KeepUnknowns``), go through
``json_format.MessageToDict`` (a ``Struct`` number is a double, so ``30`` arrives as ``30.0``), then
``deserialize_properties`` (assets, archives, secrets) and ``unknown_checking_proxy``, which wraps
every dict and list in a ``Mapping`` / ``Sequence`` proxy (no ``dict`` or ``list``) whose item access
raises ``UnknownValueError`` on a value the preview does not know. A policy that lets that error out is
abandoned, and the engine shows one advisory "can't run policy ... during preview" line instead of its
findings. So the adapter converts every resource once, before any rule reads it:
``pulumi_policy.deserialize.serialize_properties`` unwraps the proxies without reading through them,
the engine's unknown sentinels become ``checks.UNKNOWN``, whole floats become ints. The rules then see
plain values and decide about unknowns themselves (see ``checks``); a rule's undecided checks are
raised as one ``UnknownValueError`` after its violations are reported, so they surface as that
advisory line, naming what could not be told, while the violations keep the pack's mandatory level.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from infra.errors import InfraError
from infra.policy.checks import RULES, UNKNOWN, Undecided, evaluate

# The engine's unknown-value sentinels, as ``pulumi_policy.proxy`` names them (one per value type).
_SENTINEL_NAMES: Final = ("UNKNOWN_BOOLEAN_VALUE", "UNKNOWN_NUMBER_VALUE", "UNKNOWN_STRING_VALUE",
                          "UNKNOWN_ARRAY_VALUE", "UNKNOWN_ASSET_VALUE", "UNKNOWN_ARCHIVE_VALUE",
                          "UNKNOWN_OBJECT_VALUE")
_SHOWN_UNDECIDED: Final = 20


@dataclass(frozen=True, slots=True)
class PolicyResourceView:
    """A ``pulumi_policy.PolicyResource`` seen through the ``ResourceView`` protocol, with plain values."""

    type: str
    name: str
    inputs: dict[str, Any]
    protect: bool
    urn: str
    dependencies: tuple[str, ...] = ()
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _stack_of(urn: str) -> str:
    # urn:pulumi:<stack>::<project>::<type>::<name>
    return urn.split(":", 2)[2].split("::", 1)[0] if urn.startswith("urn:pulumi:") else ""


def plain(value: Any, sentinels: Collection[str]) -> Any:
    """A property value as plain data: mappings as dicts, sequences as lists, whole floats as ints and
    the engine's unknown sentinels as ``UNKNOWN``. Anything else (an asset, an archive) stays as is."""
    if isinstance(value, str):
        return UNKNOWN if value in sentinels else value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): plain(v, sentinels) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [plain(v, sentinels) for v in value]
    return value


def _address(resource: Any) -> str:
    return f"{resource.resource_type}::{resource.name}"


def resource_view(resource: Any, pulumi_policy: Any) -> PolicyResourceView:
    """One ``PolicyResource`` as plain values. ``serialize_properties`` unwraps the unknown-checking
    proxies without reading through them (reading an unknown through a proxy raises)."""
    sentinels = frozenset(getattr(pulumi_policy.proxy, n) for n in _SENTINEL_NAMES)
    raw = pulumi_policy.deserialize.serialize_properties(resource.props)
    by_property = getattr(resource, "property_dependencies", None) or {}
    return PolicyResourceView(
        type=resource.resource_type, name=resource.name, inputs=plain(raw, sentinels),
        protect=bool(getattr(resource.opts, "protect", False)), urn=resource.urn,
        dependencies=tuple(_address(d) for d in getattr(resource, "dependencies", None) or ()),
        property_dependencies={str(k): tuple(_address(d) for d in v) for k, v in by_property.items()})


def _undecided_error(pulumi_policy: Any, undecided: Sequence[Undecided]) -> Exception:
    """The ``UnknownValueError`` that makes the engine report ``undecided`` as one advisory diagnostic."""
    shown = "; ".join(f"{u.resource}: {u.message}" for u in undecided[:_SHOWN_UNDECIDED])
    more = f"; and {len(undecided) - _SHOWN_UNDECIDED} more" if len(undecided) > _SHOWN_UNDECIDED else ""
    error: Exception = pulumi_policy.proxy.UnknownValueError(pulumi_policy.proxy.UNKNOWN_STRING_VALUE, [])
    error.message = (f"{len(undecided)} check(s) need values that are unknown until the resources exist "  # type: ignore[attr-defined]
                     f"(checked again when they are known): {shown}{more}")
    return error


def validator(rule: str) -> Callable[[Any, Callable[[str, str | None], None]], None]:
    """The ``validate`` callback of one rule's ``StackValidationPolicy``."""

    def validate(args: Any, report_violation: Callable[[str, str | None], None]) -> None:
        pulumi_policy = _pulumi_policy()
        views = [resource_view(r, pulumi_policy) for r in args.resources]
        stack = _stack_of(views[0].urn) if views else ""
        by_address = {f"{v.type}::{v.name}": v.urn for v in views}
        violations, undecided = evaluate(stack, views, [rule])
        for violation in violations:
            report_violation(violation.message, by_address.get(violation.resource))
        if undecided:
            raise _undecided_error(pulumi_policy, undecided)

    return validate


def _pulumi_policy() -> Any:
    try:
        import pulumi_policy  # type: ignore[import-not-found, unused-ignore]
        import pulumi_policy.deserialize  # type: ignore[import-not-found, unused-ignore]
        import pulumi_policy.proxy  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:  # depends on the optional dependency
        raise InfraError("the policy pack needs the pulumi-policy package (pip install pulumi-policy)") from exc
    return pulumi_policy


def policies() -> list[Any]:
    """One ``StackValidationPolicy`` per rule of ``checks.RULES``."""
    pulumi_policy = _pulumi_policy()
    return [pulumi_policy.StackValidationPolicy(name=rule, description=description, validate=validator(rule))
            for rule, (_, description) in RULES.items()]


def build_pack(name: str = "dataforge") -> Any:
    """Build AND serve the pack: ``PolicyPack`` starts the analyzer the Pulumi engine connects to,
    so only the pack's entry point (``__main__``) calls this."""
    pulumi_policy = _pulumi_policy()
    return pulumi_policy.PolicyPack(name=name, enforcement_level=pulumi_policy.EnforcementLevel.MANDATORY,
                                    policies=policies())
