"""The edge between Chalice and the handlers: API-key check, JSON responses, error envelope.

``Runtime`` holds the configuration and services, built lazily on the first request (cold start) by a
factory a local server may replace (``runtime.build_with``), and replaceable in tests
(``runtime.use(services)``). A view marked ``reusable`` tells the services' ``Recorder`` what its answer
was computed from (``chalicelib.recording``): its cached reads, the services it used (so the key it was
checked against), and what the view itself declares.
"""

from __future__ import annotations

import functools
import hmac
import logging
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

import msgspec
from chalice.app import BadRequestError as ChaliceBadRequest
from chalice.app import Chalice, CORSConfig, Response

from chalicelib.config import API_KEY_HEADER, ApiConfig
from chalicelib.errors import ApiError, ForbiddenError, TooManyRequestsError, UnauthorizedError
from chalicelib.recording import NO_RECORDING, Recorder
from chalicelib.services import Services
from dataforge.errors import SettingsError
from dataforge.settings import Settings

logger = logging.getLogger(__name__)

JSON_HEADERS: Final = {"Content-Type": "application/json", "Cache-Control": "no-store"}
_ENCODER: Final = msgspec.json.Encoder()  # compact UTF-8 JSON, several times faster than json.dumps
F = TypeVar("F", bound=Callable[..., Any])


class Runtime:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._services: Services | None = None
        self._make: Callable[[ApiConfig], Services] = Services

    def services(self) -> Services:
        with self._lock:
            if self._services is None:
                self._services = self._make(ApiConfig.from_env())
            return self._services

    def recorder(self) -> Recorder:
        """The recorder of the current services (none yet: they will be built with the factory's)."""
        services = self._services
        return services.recorder if services is not None else NO_RECORDING

    def build_with(self, make: Callable[[ApiConfig], Services]) -> None:
        """How the services are built on the first request (a local server injects its engine and
        recorder); forgets services built before."""
        with self._lock:
            self._make, self._services = make, None

    def is_current(self, services: Services) -> bool:
        """Whether ``services`` are still the ones requests get (no lock: one attribute read)."""
        return self._services is services

    def use(self, services: Services | None) -> None:
        """Inject (tests, the local server) or reset the services."""
        with self._lock:
            self._services = services


def cors_config(settings: Settings | None = None) -> CORSConfig | None:
    """CORS for the dashboard origin only (``DATAFORGE_CORS_ORIGIN``), none when unset."""
    try:
        origin = (settings or Settings.from_env()).cors_origin
    except SettingsError:
        return None
    if not origin:
        return None
    return CORSConfig(allow_origin=origin, allow_headers=[API_KEY_HEADER, "Content-Type"], max_age=600)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(body=_ENCODER.encode(body).decode(), status_code=status, headers=dict(JSON_HEADERS))


def error_response(status: int, code: str, message: str, *, retry_after: int | None = None) -> Response:
    response = json_response({"error": {"code": code, "message": message}}, status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def check_api_key(headers: Any, expected: str | None) -> None:
    """401 without the header, 403 with a wrong key. ``expected`` None: API Gateway checked it (AWS)."""
    if expected is None:
        return
    given = headers.get(API_KEY_HEADER) if headers is not None else None
    if not given:
        raise UnauthorizedError("missing_api_key", f"send the API key in the {API_KEY_HEADER} header")
    if not hmac.compare_digest(str(given).encode(), expected.encode()):
        raise ForbiddenError("invalid_api_key", f"the {API_KEY_HEADER} header does not hold a valid API key")


def endpoint(
    app: Chalice, runtime: Runtime, *, auth: bool = True, status: int = 200, reusable: bool = False,
) -> Callable[[F], F]:
    """Wrap a view: key check, JSON body, ``ApiError`` -> its status, anything else -> logged 500.

    ``reusable``: the view reads only through ``TtlCache`` (and tells ``services.recorder`` what else can
    change its answer, the clock included), so a 200 of it may be sent again while those hold."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Response:
            if not reusable:
                return answer(*args, **kwargs)
            recorder = runtime.recorder()
            recorder.start()
            response: Response | None = None
            try:
                response = answer(*args, **kwargs)
                return response
            finally:
                recorder.finish(response is not None and response.status_code == 200)

        def answer(*args: Any, **kwargs: Any) -> Response:
            try:
                services = runtime.services()
                if reusable:
                    services.recorder.depend(lambda: runtime.is_current(services))
                if auth:
                    check_api_key(getattr(app.current_request, "headers", None), services.config.api_key)
                return json_response(view(*args, **kwargs), status)
            except ApiError as exc:
                retry_after = exc.retry_after if isinstance(exc, TooManyRequestsError) else None
                return error_response(exc.status, exc.code, exc.message, retry_after=retry_after)
            except ChaliceBadRequest:
                return error_response(400, "invalid_body", "the request body is not valid JSON")
            except Exception:  # the API's outermost boundary: log with context, answer generically
                request = app.current_request
                logger.exception("unhandled error on %s %s", request.method if request else "?",
                                 request.path if request else "?")
                return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")

        return wrapper  # type: ignore[return-value]

    return decorate
