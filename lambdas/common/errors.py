"""The landing Lambdas' narrow errors. A ``StorageError`` fails the invocation so that it is retried;
a bad record never raises (it is quarantined)."""

from __future__ import annotations

from dataforge.errors import DataForgeError


class LandingError(DataForgeError):
    """Base of the landing Lambdas' errors."""


class StorageError(LandingError):
    """Reading from or writing to S3 failed; the batch must be retried as a whole."""


class SupersededObjectError(LandingError):
    """The notified object version is gone (overwritten in an unversioned bucket); its successor's
    own notification lands the new content."""


class MalformedFileError(LandingError):
    """A landed file cannot be read as a whole (wrong header, not UTF-8, truncated gzip, ...)."""


class QueryStopError(DataForgeError):
    """Listing or stopping the API workgroup's Athena queries failed; the scheduled run fails so that it is
    seen (the evaluator's errors alarm) and retried."""


class TopicsError(DataForgeError):
    """Base of the kafka-topics function's errors: the invocation fails, and with it the deployment."""


class TopicSpecError(TopicsError):
    """The declared topics or the function's settings are malformed or ask for what the cluster cannot take."""


class TopicUpdateError(TopicsError):
    """The cluster refused or cannot apply the declared topic (fewer partitions, a create-only config, ...)."""
