"""Every AWS client a runtime creates, made in one place with one retry configuration.

Lambdas, Glue jobs and the API create their boto3 clients and resources through ``client`` and
``resource`` (never ``session.client(...)`` directly; ``tests/unit/test_aws_clients.py`` scans the
runtime packages for that), so they all get ``client_config()``:

- **retry mode ``adaptive``**: the standard mode's retry rules (transient errors: connection errors,
  HTTP 500/502/503/504, ``RequestTimeout``; throttling errors: ``ThrottlingException``,
  ``ProvisionedThroughputExceededException``, S3's ``SlowDown``, ...; truncated binary exponential
  backoff with jitter, ``rand(0, 1) * min(base * 2**i, 20 s)``, base 1 s for throttling errors and
  50 ms (25 ms for DynamoDB) otherwise; a retry quota per client) plus client-side rate limiting: a
  token bucket that slows the client's sending rate when the service throttles it (boto3 guide
  "Retries", "Available retry modes"; botocore ``retries/standard.py`` and ``retries/adaptive.py``).
  Every client belongs to one function or job of one tenant, the case the SDK reference's
  "Retry behavior" page says adaptive mode is meant for.
- **``MAX_ATTEMPTS`` = 5** attempts per call (the first one included). Standard mode's default is 3
  (4 for DynamoDB): a throttling burst on a DynamoDB export or an S3 prefix under ``SlowDown`` then
  fails the whole batch, and the event source mapping or the job retries everything it had already
  written. Five attempts wait at most 1 + 2 + 4 + 8 = 15 s between throttled attempts (half that on
  average) and well under a second between attempts after transient errors: long enough for a
  throttle burst to pass, short against the landing function's timeout (the stacks' ``ingestion``
  ``timeout_seconds``, 60 s by default) and the API's, so a dependency that stays down still fails the call in time for
  the caller's own retry (the mapping's batch retry, the job's rerun, the client's request).

Endpoints follow the AWS SDKs' precedence ("Service-specific endpoints", AWS SDKs and Tools reference
guide): ``AWS_ENDPOINT_URL_<SERVICE>`` (e.g. ``AWS_ENDPOINT_URL_S3``) overrides the global
``AWS_ENDPOINT_URL``. The runtimes pass the global one explicitly (``Settings.endpoint_url``), and
botocore ignores every configured endpoint when one is passed, so ``client`` applies the
service-specific variable itself. On AWS neither is set; the embedded platform sets the global one,
and a chaos experiment sets ``AWS_ENDPOINT_URL_S3`` to put Toxiproxy between one process and S3.

An injected ``boto3.Session`` is used as given (tests attach botocore event handlers to it); without
one, each call makes a new session for the region.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Final

import boto3
from botocore.config import Config

from dataforge import envvars

RETRY_MODE: Final = "adaptive"
MAX_ATTEMPTS: Final = 5


def client_config(**options: Any) -> Config:
    """The one client configuration: adaptive retries, ``MAX_ATTEMPTS`` attempts, plus ``options``
    (other ``botocore.config.Config`` settings, e.g. ``max_pool_connections``; never ``retries``)."""
    if "retries" in options:
        raise TypeError("retries are configured once, in dataforge.aws.client_config; do not override them")
    # ``total_max_attempts`` counts the first attempt; the client config's ``max_attempts`` would count
    # retries only (boto3 guide "Retries", "Available configuration options").
    return Config(retries={"mode": RETRY_MODE, "total_max_attempts": MAX_ATTEMPTS}, **options)


def _session(session: boto3.Session | None, region: str | None) -> boto3.Session:
    return session if session is not None else boto3.session.Session(region_name=region)


def endpoint_for(service: str, endpoint_url: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """``endpoint_url`` (the global endpoint), unless ``AWS_ENDPOINT_URL_<SERVICE>`` names one for
    ``service`` (its identifier upper-cased, ``-`` as ``_``). None: the SDK resolves the endpoint."""
    if endpoint_url is None:
        return None  # botocore applies the configured endpoints itself
    variable = envvars.AWS_ENDPOINT_URL_SERVICE_PREFIX + service.upper().replace("-", "_")
    return (os.environ if environ is None else environ).get(variable) or endpoint_url


def client(service: str, *, session: boto3.Session | None = None, endpoint_url: str | None = None,
           region: str | None = None, **options: Any) -> Any:
    """A low-level client of ``service`` with ``client_config(**options)``."""
    return _session(session, region).client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint_for(service, endpoint_url), region_name=region,
        config=client_config(**options))


def resource(service: str, *, session: boto3.Session | None = None, endpoint_url: str | None = None,
             region: str | None = None, **options: Any) -> Any:
    """A boto3 resource of ``service`` whose client has ``client_config(**options)``."""
    return _session(session, region).resource(  # type: ignore[call-overload]
        service, endpoint_url=endpoint_for(service, endpoint_url), region_name=region,
        config=client_config(**options))

