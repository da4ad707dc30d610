"""The route wrapper's error envelope: a 429 carries ``Retry-After`` beside the API's error shape."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from chalice.app import Chalice
from chalice.test import Client
from chalicelib.errors import TooManyRequestsError
from chalicelib.http import Runtime, endpoint


def test_too_many_requests_is_429_with_retry_after() -> None:
    app = Chalice("t")
    runtime = Runtime()
    runtime.use(SimpleNamespace(config=SimpleNamespace(api_key=None)))  # type: ignore[arg-type]

    @app.route("/busy", methods=["POST"])
    @endpoint(app, runtime, status=202)
    def busy() -> Any:
        raise TooManyRequestsError("too_many_queries", "retry in a few seconds", retry_after=7)

    with Client(app) as client:
        response = client.http.post("/busy")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert json.loads(response.body) == {"error": {"code": "too_many_queries", "message": "retry in a few seconds"}}
