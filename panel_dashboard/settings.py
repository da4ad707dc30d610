"""Dashboard settings, read once from the environment into a frozen object (fail fast).

Names come from :mod:`dataforge.envvars` (``DATAFORGE_API_URL``, ``DATAFORGE_API_KEY``,
``DATAFORGE_REALTIME_REFRESH_SECONDS``, ``DATAFORGE_DAILY_REFRESH_SECONDS``). The API key stays in
this server-side object; nothing puts it into a widget, so it never reaches the browser.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from dataforge import envvars
from panel_dashboard.errors import DashboardSettingsError

DEFAULT_API_URL: Final = "http://127.0.0.1:8000"
# One shared poller per server process reads the realtime route this often, whatever the number of
# sessions (panel_dashboard.poller): every second, so a speed-path minute shows within about a second.
DEFAULT_REALTIME_REFRESH_SECONDS: Final = 1.0
DEFAULT_DAILY_REFRESH_SECONDS: Final = 60.0
#: Data is called stale when the newest realtime minute is older than this.
DEFAULT_DATA_STALE_SECONDS: Final = 300
#: Minutes shown by the realtime chart (also the fixed size of its buffer).
DEFAULT_REALTIME_MINUTES: Final = 60
#: Days of platform totals shown by the overview series.
DEFAULT_SERIES_DAYS: Final = 30
RUNBOOK_PATH: Final = "docs/runbooks/incident_response.md"


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise DashboardSettingsError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if not 0.2 <= value <= 86_400:
        raise DashboardSettingsError(f"{name} must be within [0.2, 86400] seconds, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    api_url: str
    api_key: str = field(repr=False)  # never logged, never sent to the browser
    realtime_refresh_seconds: float = DEFAULT_REALTIME_REFRESH_SECONDS
    daily_refresh_seconds: float = DEFAULT_DAILY_REFRESH_SECONDS
    data_stale_seconds: int = DEFAULT_DATA_STALE_SECONDS
    realtime_minutes: int = DEFAULT_REALTIME_MINUTES
    series_days: int = DEFAULT_SERIES_DAYS
    runbook_url: str = RUNBOOK_PATH

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DashboardSettings:
        env = os.environ if environ is None else environ
        api_url = (env.get(envvars.API_URL) or DEFAULT_API_URL).rstrip("/")
        if not api_url.startswith(("http://", "https://")):
            raise DashboardSettingsError(f"{envvars.API_URL} must be an http(s) URL, got {api_url!r}")
        api_key = env.get(envvars.API_KEY) or ""
        if not api_key:
            raise DashboardSettingsError(f"set {envvars.API_KEY}: the dashboard calls the API with it (server-side)")
        realtime = _seconds(env, envvars.REALTIME_REFRESH_SECONDS, DEFAULT_REALTIME_REFRESH_SECONDS)
        daily = _seconds(env, envvars.DAILY_REFRESH_SECONDS, DEFAULT_DAILY_REFRESH_SECONDS)
        return cls(api_url=api_url, api_key=api_key, realtime_refresh_seconds=realtime,
                   daily_refresh_seconds=max(daily, realtime))
