"""One poller per server process, shared by every browser session of that process.

``SharedPoller`` reads the API on its own loop (one asyncio task on the server's event loop): the
realtime minutes every ``realtime_refresh_seconds``; every ``daily_refresh_seconds`` the daily series
(the ``series_days`` days ending at the newest day that has KPIs: when the last days have none,
earlier windows are searched, bounded), the summary of that latest day and its merchants
breakdown; the alerts every ``ALERTS_PERIOD_SECONDS`` (on-call wants them sooner than the daily
KPIs). Cycles never overlap: a slow API makes the loop late, never piles up requests.

Everything derived from a read is computed once per cycle for all sessions: the realtime columns
and the minimal update of a chart's source from the previous cycle (``RealtimeView.delta``), a
``version`` per kind of data that changes only when its content does (sessions skip unchanged
data by comparing versions), and the status line. Each cycle's ``Snapshot`` is handed to every
subscribed session (``subscribe``; the session schedules the model updates under its document
lock); a new session starts from ``current()``, so its first page already carries the data.

The loop starts with the first subscriber and stops ``IDLE_SECONDS`` after the last one left, so a
visitor arriving in between finds fresh data. Memory is bounded: one fixed-size minute buffer,
the latest data of each kind, one entry per live session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from panel_dashboard.client import ApiClient
from panel_dashboard.errors import ApiError, ApiUnavailableError
from panel_dashboard.models import Alert, DailyKpi, Realtime, Summary
from panel_dashboard.settings import DashboardSettings
from panel_dashboard.state import MinuteBuffer, SourceUpdate, Status, fingerprint, source_update, status_of

log = logging.getLogger(__name__)

ALERTS_PERIOD_SECONDS: Final = 10.0
RECENT_ALERTS: Final = 50
KPI_WINDOW_DAYS: Final = 366  # the longest range /v1/kpis/daily accepts
KPI_LOOKBACK_WINDOWS: Final = 10  # earlier windows searched for the newest KPIs (about ten years)
SHARE: Final = 0.9  # a session's own cached read (an earlier day's merchants) lives this fraction of a period
IDLE_SECONDS: Final = 300.0
CONNECTING: Final = "Connecting…"  # the loop keeps the data fresh this long after the last session left


@dataclass(frozen=True, slots=True)
class DailyData:
    series: list[DailyKpi]
    summary: Summary | None
    merchants: list[DailyKpi]  # of ``latest_date``
    latest_date: str | None
    version: int = 0  # changes only when the content does


@dataclass(frozen=True, slots=True)
class AlertsData:
    open: list[Alert]
    recent: list[Alert]
    version: int = 0


@dataclass(frozen=True, slots=True)
class RealtimeView:
    """The realtime chart's columns, and how to get there from the previous version's columns."""

    columns: dict[str, list[Any]]
    delta: SourceUpdate  # from version - 1 to version
    version: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What every session shows; shared, read-only."""

    status: Status
    realtime: RealtimeView | None
    daily: DailyData | None
    alerts: AlertsData | None


def _now() -> datetime:
    return datetime.now(UTC)


class SharedPoller:
    def __init__(self, client: ApiClient, settings: DashboardSettings, *,
                 clock: Callable[[], datetime] = _now, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.settings = settings
        self._clock = clock
        self._monotonic = monotonic
        self._buffer = MinuteBuffer(settings.realtime_minutes)
        self._subscribers: dict[int, Callable[[Snapshot], None]] = {}
        self._next_token = 0
        self._last_daily: float | None = None
        self._last_alerts: float | None = None
        self._idle_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # bound to a loop only when first awaited
        self._realtime: RealtimeView | None = None
        self._realtime_print = ""
        self._daily: DailyData | None = None
        self._daily_print = ""
        self._alerts: AlertsData | None = None
        self._alerts_print = ""
        self.last_success: datetime | None = None
        self.last_error: str | None = None
        self.freshness_seconds: float | None = None
        self.newest_event_time: str | None = None
        self.lag_seconds: float | None = None
        self.cycles = 0

    # --- sessions -------------------------------------------------------------------------------
    def subscribe(self, deliver: Callable[[Snapshot], None]) -> int:
        """Hand every future snapshot to ``deliver``; returns the token for ``unsubscribe``."""
        self._next_token += 1
        self._subscribers[self._next_token] = deliver
        self._idle_since = None
        return self._next_token

    def unsubscribe(self, token: int) -> None:
        self._subscribers.pop(token, None)
        if not self._subscribers:
            self._idle_since = self._monotonic()

    @property
    def sessions(self) -> int:
        return len(self._subscribers)

    def current(self) -> Snapshot:
        """The latest data with the status as of now (what a new session starts from)."""
        return Snapshot(self.status(), self._realtime, self._daily, self._alerts)

    def status(self) -> Status:
        if self.cycles == 0:
            return Status(False, "", CONNECTING)  # the first read is under way: nothing to call stale yet
        return status_of(self._clock(), last_success=self.last_success, last_error=self.last_error,
                         freshness_seconds=self.freshness_seconds, newest_event_time=self.newest_event_time,
                         lag_seconds=self.lag_seconds,
                         data_stale_seconds=self.settings.data_stale_seconds)

    # --- the loop -------------------------------------------------------------------------------
    def ensure_running(self) -> None:
        """Start the loop on the running event loop (the server's) unless it already runs."""
        if self._task is None or self._task.done():
            self._idle_since = None if self._subscribers else self._monotonic()
            self._task = asyncio.get_running_loop().create_task(self._run())

    def request_daily(self) -> None:
        """Re-read the daily data now rather than at the end of its period."""
        self._last_daily = None
        self._poke()

    def request_alerts(self) -> None:
        """Re-read the alerts now (e.g. one was just acknowledged) and show them to every session."""
        self._last_alerts = None
        self._poke()

    def _poke(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        period = self.settings.realtime_refresh_seconds
        while self._idle_since is None or self._monotonic() - self._idle_since < IDLE_SECONDS:
            started = self._monotonic()
            try:
                self.publish(await self.cycle())
            except Exception:  # the loop's boundary: log with context, keep serving the sessions
                log.exception("dashboard refresh cycle failed")
            wait = max(0.0, period - (self._monotonic() - started))
            with contextlib.suppress(TimeoutError):  # the period is over, or a read was requested early
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()
        self._task = None

    def publish(self, snapshot: Snapshot) -> None:
        for deliver in list(self._subscribers.values()):
            deliver(snapshot)

    async def cycle(self) -> Snapshot:
        """One refresh: the reads that are due, in parallel; then the shared snapshot."""
        mono = self._monotonic()
        daily_due = self._last_daily is None or mono - self._last_daily >= self.settings.daily_refresh_seconds
        alerts_due = self._last_alerts is None or mono - self._last_alerts >= ALERTS_PERIOD_SECONDS
        try:
            tasks: list[Any] = [self.client.realtime(self.settings.realtime_minutes, attempts=2)]
            if daily_due:
                tasks.append(self._read_daily())
            if alerts_due:
                tasks.append(self._read_alerts())
            results = list(await asyncio.gather(*tasks))
        except (ApiError, ApiUnavailableError) as exc:
            self.last_error = exc.message if isinstance(exc, ApiError) else "unreachable"
            log.warning("refresh failed: %s", exc)
        else:
            self._take_realtime(results.pop(0))
            if daily_due:
                self._take_daily(results.pop(0))
                self._last_daily = mono
            if alerts_due:
                self._take_alerts(results.pop(0))
                self._last_alerts = mono
            self.last_success = self._clock()
            self.last_error = None
        self.cycles += 1
        return self.current()

    # --- derived data, once per cycle -----------------------------------------------------------
    def _take_realtime(self, realtime: Realtime) -> None:
        self.freshness_seconds = realtime.get("freshness_seconds")
        self.newest_event_time = realtime.get("newest_event_time")
        self.lag_seconds = realtime.get("pipeline_lag_seconds")
        printed = fingerprint(realtime["items"])
        if printed == self._realtime_print:
            return
        self._realtime_print = printed
        self._buffer.merge(realtime["items"])
        columns = self._buffer.columns()
        previous = self._realtime
        delta = source_update(previous.columns if previous else {}, columns, "minute")
        if previous is not None and delta.empty:
            return
        self._realtime = RealtimeView(columns, delta, (previous.version if previous else 0) + 1)

    def _take_daily(self, daily: DailyData) -> None:
        printed = fingerprint([daily.series, daily.summary, daily.merchants])
        if printed != self._daily_print or self._daily is None:
            self._daily_print = printed
            self._daily = replace(daily, version=(self._daily.version if self._daily else 0) + 1)

    def _take_alerts(self, alerts: AlertsData) -> None:
        printed = fingerprint([alerts.open, alerts.recent])
        if printed != self._alerts_print or self._alerts is None:
            self._alerts_print = printed
            self._alerts = replace(alerts, version=(self._alerts.version if self._alerts else 0) + 1)

    # --- reads (the only reader of these: no read cache needed) --------------------------------
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
            series = await self.client.daily_kpis(start.isoformat(), end.isoformat(), attempts=2)
            if series:
                break
            end = start - timedelta(days=1)
            start = end - timedelta(days=KPI_WINDOW_DAYS - 1)
        if not series:
            return []
        latest = date.fromisoformat(max(row["event_date"] for row in series))
        first = latest - span
        if first < start:  # found near the start of a wide window: read the whole series
            series = await self.client.daily_kpis(first.isoformat(), latest.isoformat(), attempts=2)
        return sorted((row for row in series if row["event_date"] >= first.isoformat()),
                      key=lambda row: row["event_date"])

    async def _read_daily(self) -> DailyData:
        series = await self._read_series()
        latest = series[-1]["event_date"] if series else None
        if latest is None:
            return DailyData(series, None, [], None)
        summary, merchants = await asyncio.gather(self.client.summary(latest, attempts=2),
                                                  self.client.merchants(latest, attempts=2))
        return DailyData(series, summary, merchants, latest)

    async def _read_alerts(self) -> AlertsData:
        opened, acked, resolved = await asyncio.gather(
            self.client.alerts("open", attempts=2), self.client.alerts("acknowledged", attempts=2),
            self.client.alerts("resolved", attempts=2))
        recent = sorted(acked + resolved, key=lambda a: a["raised_at"], reverse=True)[:RECENT_ALERTS]
        return AlertsData(sorted(opened, key=lambda a: a["raised_at"], reverse=True), recent)
