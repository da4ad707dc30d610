"""What only a local server has is injected into the API's services: the local query engine and the
recorder of what a response was computed from. Without them (Lambda) nothing is recorded and the local
engine is refused with what to do."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from typing import Any

import pytest
from chalice.app import Chalice
from chalice.test import Client
from chalicelib.config import ApiConfig
from chalicelib.errors import DependencyError
from chalicelib.http import Runtime, endpoint
from chalicelib.recording import NO_RECORDING, Cache
from chalicelib.services import Services

from devkit.local import local_environment

ENV = local_environment(endpoint_url="http://127.0.0.1:9", kafka_bootstrap_servers="127.0.0.1:9")


def _config() -> ApiConfig:
    return ApiConfig.from_env(ENV)


class _Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def start(self) -> None:
        self.events.append("start")

    def read(self, cache: Cache, key: Hashable, value: object) -> None:
        self.events.append(f"read {key}")

    def depend(self, check: Callable[[], bool]) -> None:
        self.events.append("depend")

    def finish(self, reusable: bool) -> None:
        self.events.append(f"finish {reusable}")


def test_without_an_injected_engine_the_local_engine_is_refused_with_what_to_do() -> None:
    services = Services(_config())
    assert services.recorder is NO_RECORDING
    with pytest.raises(DependencyError, match="dataforge api serve"):
        services.engine()


def test_the_injected_engine_factory_is_called_once_with_the_services() -> None:
    made: list[Services] = []

    def factory(services: Services) -> Any:
        made.append(services)
        return object()

    services = Services(_config(), local_engine=factory)
    assert services.engine() is services.engine()
    assert made == [services]


def test_the_runtime_builds_services_with_the_injected_factory_and_records_through_their_recorder(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    recorder = _Recorder()
    app, runtime = Chalice("t"), Runtime()
    runtime.build_with(lambda config: Services(config, recorder=recorder))

    @app.route("/r")
    @endpoint(app, runtime, auth=False, reusable=True)
    def reusable() -> Any:
        runtime.services().kpis()._cache.get("k", lambda: 1)  # the repository's cache, read as a view reads it
        return {"ok": True}

    with Client(app) as client:
        first = client.http.get("/r")
        second = client.http.get("/r")
    assert json.loads(first.body) == json.loads(second.body) == {"ok": True}
    # the first request builds the services (nothing recorded yet); the second records through them
    assert recorder.events == ["depend", "read k", "start", "depend", "read k", "finish True"]
