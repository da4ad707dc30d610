"""Pure dashboard helpers: formatting, staleness, the fixed-size minute buffer, CSV, runbook links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from panel_dashboard.state import (
    MinuteBuffer,
    format_change,
    format_count,
    format_money,
    format_rate,
    rows_to_csv,
    runbook_link,
    status_of,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _minute(i: int) -> dict[str, object]:
    ts = NOW + timedelta(minutes=i)
    return {"minute": ts.strftime("%Y-%m-%dT%H:%MZ"), "txn_count": i, "approved_count": i, "declined_count": 0,
            "volume_usd": "1.00", "decline_rate": "0.0000"}


def test_formats_money_counts_rates_and_changes() -> None:
    assert format_money("1234567.5") == "$1,234,567.50"
    assert format_money("-3.005") == "-$3.00"  # half-even
    assert format_money(None) == "—"
    assert format_count(4087) == "4,087"
    assert format_rate("0.9312") == "93.12%"
    assert format_rate(None) == "—"
    assert format_change("12.46") == ("▲ +12.5% vs previous day", "up")
    assert format_change("-0.04") == ("= 0.0% vs previous day", "flat")
    assert format_change(-3) == ("▼ -3.0% vs previous day", "down")
    assert format_change(None) == ("no previous period", "flat")


def test_minute_buffer_keeps_the_last_n_minutes_and_merges_idempotently() -> None:
    buffer = MinuteBuffer(5)
    for _ in range(3):  # the same minutes again and again: no growth
        buffer.merge([_minute(i) for i in range(4)])  # type: ignore[misc]
    assert len(buffer) == 4
    for start in range(0, 10_000, 50):  # hours of ticks: memory stays fixed
        buffer.merge([_minute(i) for i in range(start, start + 50)])  # type: ignore[misc]
    assert len(buffer) == 5
    assert buffer.columns()["txn_count"] == [9995, 9996, 9997, 9998, 9999]


def test_minute_buffer_rejects_a_zero_size() -> None:
    with pytest.raises(ValueError, match="size"):
        MinuteBuffer(0)


def test_status_is_stale_when_the_api_fails_or_the_data_lags() -> None:
    ok = status_of(NOW, last_success=NOW, last_error=None, freshness_seconds=30, data_stale_seconds=300)
    assert not ok.stale
    assert ok.banner == ""
    assert "12:00:00 UTC" in ok.indicator
    assert "30 s" in ok.indicator
    down = status_of(NOW + timedelta(seconds=9), last_success=NOW, last_error="unreachable", freshness_seconds=30,
                     data_stale_seconds=300)
    assert down.stale
    assert "not answering" in down.banner
    assert "9 s ago" in down.banner
    lagging = status_of(NOW, last_success=NOW, last_error=None, freshness_seconds=301, data_stale_seconds=300)
    assert lagging.stale
    assert "301 s old" in lagging.banner
    empty = status_of(NOW, last_success=NOW, last_error=None, freshness_seconds=None, data_stale_seconds=300)
    assert empty.stale


def test_the_indicator_shows_the_newest_event_time_its_age_and_the_pipeline_lag() -> None:
    status = status_of(NOW, last_success=NOW, last_error=None, freshness_seconds=1.4, data_stale_seconds=300,
                       newest_event_time="2024-01-01T11:59:58.600Z", lag_seconds=0.9)
    assert "data freshness 1.4 s" in status.indicator
    assert "pipeline lag 0.9 s" in status.indicator
    assert "newest event 2024-01-01 11:59:58.600 UTC" in status.indicator


def test_csv_and_runbook_links() -> None:
    assert rows_to_csv(["a", "b"], [[1, None], ["x,y", "2.50"]]) == 'a,b\n1,\n"x,y",2.50\n'
    base = "docs/runbooks/incident_response.md"
    assert runbook_link({"rule": "decline_rate", "runbook_url": None}, base) == f"{base}#decline_rate"
    assert runbook_link({"rule": "x", "runbook_url": "https://wiki/x"}, base) == "https://wiki/x"
