"""One poller per browser session: a single periodic callback feeding every page of that session.

Each tick (every ``realtime_refresh_seconds``) reads the realtime minutes; every
``daily_refresh_seconds`` it also reads the daily series (the ``series_days`` days ending at the newest
day that has KPIs: when the last days have none, earlier windows are searched, bounded), the summary
of that latest day and the merchants breakdown; alerts are read every ``ALERTS_PERIOD_SECONDS``
(on-call wants them sooner than the daily KPIs). Ticks never overlap: a slow API makes the poller
skip, not pile up. Listeners are plain callables, so pages are testable without a server. Durations
of recent cycles are kept in a fixed-size, process-wide deque (``CYCLE_STATS``) for the refresh-cost
benchmark. Every read passes a ``ttl`` a little under its period, so the sessions of one server process
share one API call per period through the client's cache (``client.ResponseCache``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from panel_dashboard.client import ApiClient
from panel_dashboard.errors import ApiError, ApiUnavailableError
from panel_dashboard.models import Alert, DailyKpi, Realtime, Summary
from panel_dashboard.settings import DashboardSettings
from panel_dashboard.state import Status, status_of

log = logging.getLogger(__name__)

ALERTS_PERIOD_SECONDS: Final = 10.0
RECENT_ALERTS: Final = 50
KPI_WINDOW_DAYS: Final = 366  # the longest range /v1/kpis/daily accepts
KPI_LOOKBACK_WINDOWS: Final = 10  # earlier windows searched for the newest KPIs (about ten years)
SHARE: Final = 0.9  # a shared read is reused for this fraction of its period (ticks drift a little)


@dataclass(frozen=True, slots=True)
class CycleStat:
    total_seconds: float  # wall time of the tick, awaiting the API included
    apply_seconds: float  # time spent updating the session's models (CPU on the server's event loop)
    sessions_alive: int


CYCLE_STATS: deque[CycleStat] = deque(maxlen=2000)
_ALIVE: set[int] = set()


@dataclass(slots=True)
class DailyData:
    series: list[DailyKpi]
    summary: Summary | None
    merchants: list[DailyKpi]
    latest_date: str | None


@dataclass(slots=True)
class AlertsData:
    open: list[Alert]
    recent: list[Alert]


@dataclass(slots=True)
class Listeners:
    realtime: list[Callable[[Realtime], None]] = field(default_factory=list)
    daily: list[Callable[[DailyData], None]] = field(default_factory=list)
    alerts: list[Callable[[AlertsData], None]] = field(default_factory=list)
    status: list[Callable[[Status], None]] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC)


class SessionPoller:
    def __init__(self, client: ApiClient, settings: DashboardSettings, *,
                 clock: Callable[[], datetime] = _now) -> None:
        self.client = client
        self.settings = settings
        self.listeners = Listeners()
        self._clock = clock
        self._busy = False
        self._last_daily: float | None = None
        self._last_alerts: float | None = None
        self.last_success: datetime | None = None
        self.last_error: str | None = None
        self.freshness_seconds: int | None = None
        self.merchants_date: str | None = None  # chosen on the merchants page; None = latest
        self._callback: Any = None
        # How model updates run: directly (tests, benches) or, in a Bokeh session, as a next-tick
        # callback of the session's document so that they hold its lock (raw Bokeh models need it).
        self._schedule: Callable[[Callable[[], None]], None] = lambda update: update()

    # --- lifecycle (Panel) ----------------------------------------------------------------------
    def start(self) -> None:
        import panel as pn

        _ALIVE.add(id(self))
        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            def schedule(update: Callable[[], None]) -> None:
                doc.add_next_tick_callback(update)

            self._schedule = schedule
        self._callback = pn.state.add_periodic_callback(self.tick,  # type: ignore[arg-type] # coroutines are supported
                                                        period=int(self.settings.realtime_refresh_seconds
                                                                              * 1000))
        pn.state.on_session_destroyed(lambda _ctx: self.stop())
        pn.state.execute(self.tick)

    def stop(self) -> None:
        _ALIVE.discard(id(self))
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def request_daily(self) -> None:
        """Make the next tick re-read the daily data (e.g. the merchants date changed)."""
        self._last_daily = None

    def request_alerts(self) -> None:
        self._last_alerts = None

    # --- one cycle ------------------------------------------------------------------------------
    async def tick(self) -> None:
        if self._busy:
            return
        self._busy = True
        started = time.perf_counter()
        try:
            mono = time.monotonic()
            daily_due = self._last_daily is None or mono - self._last_daily >= self.settings.daily_refresh_seconds
            alerts_due = self._last_alerts is None or mono - self._last_alerts >= ALERTS_PERIOD_SECONDS
            realtime: Realtime | None = None
            daily: DailyData | None = None
            alerts: AlertsData | None = None
            try:
                tasks: list[Any] = [self.client.realtime(self.settings.realtime_minutes, attempts=2,
                                                         ttl=SHARE * self.settings.realtime_refresh_seconds)]
                if daily_due:
                    tasks.append(self._read_daily())
                if alerts_due:
                    tasks.append(self._read_alerts())
                results = await asyncio.gather(*tasks)
                realtime = results[0]
                rest = list(results[1:])
                if daily_due:
                    daily = rest.pop(0)
                    self._last_daily = mono
                if alerts_due:
                    alerts = rest.pop(0)
                    self._last_alerts = mono
                self.last_success = self._clock()
                self.last_error = None
                self.freshness_seconds = realtime.get("freshness_seconds")
            except (ApiError, ApiUnavailableError) as exc:
                self.last_error = exc.message if isinstance(exc, ApiError) else "unreachable"
                log.warning("refresh failed: %s", exc)
            self._schedule(lambda: self._apply(started, realtime, daily, alerts))
        finally:
            self._busy = False

    def _apply(self, started: float, realtime: Realtime | None, daily: DailyData | None,
               alerts: AlertsData | None) -> None:
        applied = time.perf_counter()
        self._dispatch(realtime, daily, alerts)
        done = time.perf_counter()
        CYCLE_STATS.append(CycleStat(done - started, done - applied, len(_ALIVE)))

    def status(self) -> Status:
        return status_of(self._clock(), last_success=self.last_success, last_error=self.last_error,
                         freshness_seconds=self.freshness_seconds,
                         data_stale_seconds=self.settings.data_stale_seconds)

    def _dispatch(self, realtime: Realtime | None, daily: DailyData | None, alerts: AlertsData | None) -> None:
        if realtime is not None:
            for realtime_listener in self.listeners.realtime:
                realtime_listener(realtime)
        if daily is not None:
            for daily_listener in self.listeners.daily:
                daily_listener(daily)
        if alerts is not None:
            for alerts_listener in self.listeners.alerts:
                alerts_listener(alerts)
        status = self.status()
        for status_listener in self.listeners.status:
            status_listener(status)

    @property
    def _daily_ttl(self) -> float:
        return SHARE * self.settings.daily_refresh_seconds

    async def _read_series(self) -> list[DailyKpi]:
        """Platform totals of the ``series_days`` days ending at the newest day with KPIs.

        The days up to today first (the usual case: one request); when they have none (the daily job
        has not run for a while, or the platform holds historical data) earlier windows of
        ``KPI_WINDOW_DAYS``, newest first, at most ``KPI_LOOKBACK_WINDOWS`` of them.
        """
        span = timedelta(days=self.settings.series_days - 1)
        end = self._clock().date()
        start = end - span
        series: list[DailyKpi] = []
        for _ in range(1 + KPI_LOOKBACK_WINDOWS):
            series = await self.client.daily_kpis(start.isoformat(), end.isoformat(), attempts=2,
                                                  ttl=self._daily_ttl)
            if series:
                break
            end = start - timedelta(days=1)
            start = end - timedelta(days=KPI_WINDOW_DAYS - 1)
        if not series:
            return []
        latest = date.fromisoformat(max(row["event_date"] for row in series))
        first = latest - span
        if first < start:  # found near the start of a wide window: read the whole series
            series = await self.client.daily_kpis(first.isoformat(), latest.isoformat(), attempts=2,
                                                  ttl=self._daily_ttl)
        return sorted((row for row in series if row["event_date"] >= first.isoformat()),
                      key=lambda row: row["event_date"])

    async def _read_daily(self) -> DailyData:
        series = await self._read_series()
        latest = series[-1]["event_date"] if series else None
        if latest is None:
            return DailyData(series, None, [], None)
        day = self.merchants_date or latest
        summary, merchants = await asyncio.gather(self.client.summary(latest, attempts=2, ttl=self._daily_ttl),
                                                  self.client.merchants(day, attempts=2, ttl=self._daily_ttl))
        return DailyData(series, summary, merchants, latest)

    async def _read_alerts(self) -> AlertsData:
        ttl = SHARE * ALERTS_PERIOD_SECONDS
        opened, acked, resolved = await asyncio.gather(
            self.client.alerts("open", attempts=2, ttl=ttl), self.client.alerts("acknowledged", attempts=2, ttl=ttl),
            self.client.alerts("resolved", attempts=2, ttl=ttl))
        recent = sorted(acked + resolved, key=lambda a: a["raised_at"], reverse=True)[:RECENT_ALERTS]
        return AlertsData(sorted(opened, key=lambda a: a["raised_at"], reverse=True), recent)
