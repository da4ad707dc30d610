"""AWS service faults injected at the botocore level: S3 ``500 InternalError`` and ``503 SlowDown``,
DynamoDB ``ProvisionedThroughputExceededException`` and ``ThrottlingException``.

A ``FaultInjector`` is a handler of botocore's ``before-send.<service>`` event: botocore emits it for
every HTTP attempt, right before sending, and sends nothing when a handler returns a response
(``botocore.endpoint.Endpoint._do_get_response``). The injector answers the first ``count`` matching
attempts (after ``skip`` of them) with the error response the service documents, as raw HTTP: status,
headers and body in the service's protocol (S3: REST-XML ``<Error><Code>``; DynamoDB: JSON 1.0
``__type``), so botocore parses it exactly as a real one and every retry layer above (the client's
retry mode, the caller's own retries) sees a real service error. Every other attempt goes to the
server untouched.

Attached by injection, never by patching: ``injector.attach(session)`` on a ``boto3.Session`` (every
client made from it afterwards has the handler) or ``injector.attach(client)`` on one client. The
counters (``seen``, ``injected``) let a test prove the fault happened.

Error shapes (Amazon S3 API reference, "Error responses" and "Amazon S3 error best practices":
``InternalError`` 500 "retry the request", ``SlowDown`` 503 "reduce your request rate"; Amazon DynamoDB
developer guide, "Error handling with DynamoDB": ``ProvisionedThroughputExceededException`` and
``ThrottlingException``, HTTP 400, retried by the SDKs).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import boto3
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

_S3_ERROR: Final = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                    "<Error><Code>{code}</Code><Message>{message}</Message>"
                    "<RequestId>DATAFORGECHAOS</RequestId><HostId>chaos</HostId></Error>")


@dataclass(frozen=True, slots=True)
class Fault:
    """One service error: the botocore service id it applies to, its HTTP status and error code."""

    service: str  # botocore's hyphenized service id: "s3", "dynamodb"
    status: int
    code: str
    message: str
    json_type_prefix: str = ""  # JSON protocols: the namespace of ``__type``

    def response(self, url: str) -> AWSResponse:
        if self.service == "s3":
            body = _S3_ERROR.format(code=self.code, message=self.message).encode()
            headers = {"Content-Type": "application/xml", "x-amz-request-id": "DATAFORGECHAOS"}
        else:
            body = json.dumps({"__type": f"{self.json_type_prefix}{self.code}", "message": self.message}).encode()
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "DATAFORGECHAOS"}
        headers["Content-Length"] = str(len(body))
        http_headers = HTTPHeaders()
        for name, value in headers.items():
            http_headers[name] = value
        return AWSResponse(url, self.status, http_headers, _RawBody(body))


class _RawBody:
    """The ``raw`` of an ``AWSResponse``: what botocore reads the content from (``stream()``)."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


S3_INTERNAL_ERROR: Final = Fault("s3", 500, "InternalError", "We encountered an internal error. Please try again.")
S3_SLOW_DOWN: Final = Fault("s3", 503, "SlowDown", "Please reduce your request rate.")
DYNAMODB_THROUGHPUT_EXCEEDED: Final = Fault(
    "dynamodb", 400, "ProvisionedThroughputExceededException",
    "The level of configured provisioned throughput for the table was exceeded. "
    "Consider increasing your provisioning level with the UpdateTable API.",
    json_type_prefix="com.amazonaws.dynamodb.v20120810#")
DYNAMODB_THROTTLING: Final = Fault("dynamodb", 400, "ThrottlingException",
                                   "Rate of requests exceeds the allowed throughput.",
                                   json_type_prefix="com.amazon.coral.availability#")


class FaultInjector:
    """Answers ``count`` attempts of ``operations`` (botocore operation names, e.g. ``PutObject``; all
    of the service's when empty) with ``fault``, after letting the first ``skip`` matching ones pass.
    Thread-safe: one injector can serve every client of a process. ``arm`` adds more faults later."""

    def __init__(self, fault: Fault, *, count: int, operations: frozenset[str] = frozenset(), skip: int = 0) -> None:
        if count < 0 or skip < 0:
            raise ValueError("count and skip are numbers of requests: 0 or more")
        self.fault = fault
        self.operations = operations
        self._lock = threading.Lock()
        self._skip = skip
        self._remaining = count
        self.seen = 0  # matching attempts, injected or passed on
        self.injected = 0

    @property
    def event_name(self) -> str:
        return f"before-send.{self.fault.service}"

    def attach(self, target: boto3.Session | Any) -> None:
        """Register on a ``boto3.Session`` (clients made from it afterwards) or on one botocore client."""
        events = target.events if isinstance(target, boto3.Session) else target.meta.events
        # the stubs type handlers as returning None; a before-send handler returns the response to use
        events.register(self.event_name, self, unique_id=f"dataforge-chaos-{id(self)}")  # type: ignore[arg-type]

    def detach(self, target: boto3.Session | Any) -> None:
        events = target.events if isinstance(target, boto3.Session) else target.meta.events
        events.unregister(self.event_name, self, unique_id=f"dataforge-chaos-{id(self)}")  # type: ignore[arg-type]

    def arm(self, count: int) -> None:
        """Inject the next ``count`` matching attempts too."""
        with self._lock:
            self._remaining += count

    @property
    def remaining(self) -> int:
        with self._lock:
            return self._remaining

    def __call__(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
        operation = event_name.rsplit(".", 1)[-1]
        if self.operations and operation not in self.operations:
            return None
        with self._lock:
            self.seen += 1
            if self._skip > 0:
                self._skip -= 1
                return None
            if self._remaining <= 0:
                return None
            self._remaining -= 1
            self.injected += 1
        return self.fault.response(str(request.url))
