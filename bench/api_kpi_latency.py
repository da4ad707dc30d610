"""KPI reads of the locally served API under N concurrent clients: p50 / p99 latency and requests/s.

    .venv/bin/python bench/api_kpi_latency.py [--clients 50] [--warmup 3] [--seconds 10] [--cold 40]
                                              [--days 30] [--merchants 10]

Starts a moto server, creates the resources (``bootstrap``), writes KPI items under ADR 0001's keys
and realtime minutes around now, serves the API in its own process (``python -m devkit api serve``,
cache TTLs from the environment or their defaults) and measures three phases:

1. cold: one client, ``--cold`` requests whose query was never asked before (every one a cache miss,
   so a DynamoDB round trip to moto) - the latency of a first dashboard load;
2. warm-up: each measured path asked once, then ``--clients`` keep-alive clients for ``--warmup`` s,
   not recorded;
3. measured: the same clients for ``--seconds`` s over a mix of daily ranges (platform, merchant +
   country, country breakdown), summary, merchants of a day and realtime windows. Realtime entries
   expire every few seconds, so this phase includes the misses a live dashboard causes.

The measured clients are keep-alive HTTP/1.1 connections driven by one asyncio event loop (uvloop,
responses parsed by httptools), each sending its next request when the previous answer arrived: on a
2-core machine the clients share the CPU with the server, and one event loop costs them far less CPU per
request than a thread per client would, so the figures measure the server. Latency is taken from the
moment a request is written to the moment its whole response is parsed, on the client's side.

Goal: p99 <= 50 ms under 50 clients. The last two lines print the goal and measured/goal.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httptools
import uvloop

from dataforge.settings import Settings
from devkit.local import free_port, port_open
from devkit.local.bootstrap import bootstrap
from devkit.local.moto_server import MotoServer
from tests.fixtures.api import API_KEY, api_environment, fake_session, put_kpis, put_realtime

GOAL_P99_MS = 50.0
HEADERS = {"x-api-key": API_KEY}
REALTIME_MINUTES_WRITTEN = 120


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def hot_paths(days: list[date], merchants: list[str]) -> list[tuple[str, str]]:
    """(kind, path) of the measured mix: what dashboards ask again and again."""
    last = days[-1]
    week = last - timedelta(days=6)
    return [
        ("daily", f"/v1/kpis/daily?from={days[0]}&to={last}"),
        ("daily", f"/v1/kpis/daily?from={week}&to={last}&merchant_id={merchants[1 % len(merchants)]}&country=US"),
        ("daily", f"/v1/kpis/daily?from={week}&to={last}&country=DE"),
        ("summary", f"/v1/kpis/summary?date={last}"),
        ("merchants", f"/v1/kpis/merchants?date={last}&limit=50"),
        ("realtime", "/v1/realtime?minutes=60"),
        ("realtime", "/v1/realtime?minutes=15"),
    ]


def cold_paths(days: list[date], merchants: list[str], count: int) -> list[tuple[str, str]]:
    """``count`` (kind, path) never asked by ``hot_paths`` nor each other: every one a cache miss."""
    paths: list[tuple[str, str]] = []
    n = 0
    while len(paths) < count:
        day = days[n % len(days)]
        start = days[0] + timedelta(days=n % 3)
        nth_day = days[-1 - (n // 5) % len(days)]  # summary / merchants: a day not asked before
        kinds = [
            ("daily", f"/v1/kpis/daily?from={start}&to={day}&limit={1 + n}"),
            ("daily", f"/v1/kpis/daily?from={start}&to={day}&merchant_id={merchants[n % len(merchants)]}"
                      f"&limit={1 + n}"),
            ("summary", f"/v1/kpis/summary?date={nth_day - timedelta(days=1)}"),
            ("merchants", f"/v1/kpis/merchants?date={nth_day}&limit={1 + n}"),
            ("realtime", f"/v1/realtime?minutes={61 + n}"),
        ]
        paths.append(kinds[n % len(kinds)])
        n += 1
    return paths


def get(conn: http.client.HTTPConnection, path: str) -> tuple[bool, float]:
    start = time.perf_counter()
    conn.request("GET", path, headers=HEADERS)
    response = conn.getresponse()
    response.read()
    return response.status == 200, (time.perf_counter() - start) * 1000


class _Client(asyncio.Protocol):
    """One keep-alive connection in a closed loop: the next request leaves when the previous answer is parsed."""

    def __init__(self, requests: list[tuple[str, bytes]], first: int, record_from: float, stop_at: float,
                 done: asyncio.Future[None]) -> None:
        self.requests, self.next, self.done = requests, first, done
        self.record_from, self.stop_at = record_from, stop_at
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.kind, self.sent = "", 0.0
        self.latencies: list[tuple[str, float]] = []
        self.failed = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.kind, request = self.requests[self.next % len(self.requests)]
        self.next += 1
        self.sent = time.perf_counter()
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._fail()

    def on_message_complete(self) -> None:
        elapsed = (time.perf_counter() - self.sent) * 1000
        now = time.monotonic()
        if now >= self.record_from:
            self.latencies.append((self.kind, elapsed))
            self.failed += self.parser.get_status_code() != 200
        if now < self.stop_at:
            self._send()
        else:
            self._finish()

    def _fail(self) -> None:
        self.failed += 1
        self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.failed += 1
            self.done.set_result(None)

    def _finish(self) -> None:
        if not self.done.done():
            self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()


async def _run_clients(port: int, clients: int, paths: list[tuple[str, str]], warmup: float,
                       seconds: float) -> tuple[dict[str, list[float]], int]:
    loop = asyncio.get_running_loop()
    head = "".join(f"{name}: {value}\r\n" for name, value in HEADERS.items())
    requests = [(kind, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}\r\n".encode()) for kind, path in paths]
    record_from = time.monotonic() + warmup
    stop_at = record_from + seconds
    protocols: list[_Client] = []
    for n in range(clients):
        done: asyncio.Future[None] = loop.create_future()
        protocol = _Client(requests, n, record_from, stop_at, done)
        await loop.create_connection(lambda p=protocol: p, "127.0.0.1", port)  # type: ignore[misc]
        protocols.append(protocol)
    await asyncio.gather(*(p.done for p in protocols))
    by_kind: dict[str, list[float]] = defaultdict(list)
    for protocol in protocols:
        for kind, elapsed in protocol.latencies:
            by_kind[kind].append(elapsed)
    return by_kind, sum(p.failed for p in protocols)


def run_clients(port: int, clients: int, paths: list[tuple[str, str]], warmup: float,
                seconds: float) -> tuple[dict[str, list[float]], int]:
    """Closed loop: each client sends its next request when the previous answer arrived."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_run_clients(port, clients, paths, warmup, seconds))


def _write_items(session: Any, settings: Settings, n_days: int, n_merchants: int) -> tuple[list[date], list[str], int]:
    """KPI items for ``n_days`` x ``n_merchants`` and realtime minutes up to now: (days, merchants, items)."""
    first = date(2024, 1, 1)
    days = [first + timedelta(days=n) for n in range(n_days)]
    merchants = [f"m_{n:03d}" for n in range(n_merchants)]
    items = put_kpis(session, settings, days, merchants)
    now = datetime.now(UTC)
    put_realtime(session, settings, [now - timedelta(minutes=m) for m in range(REALTIME_MINUTES_WRITTEN)])
    return days, merchants, items + REALTIME_MINUTES_WRITTEN


def _start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """The API served in its own process (``devkit/cli/api.py serve``), quiet but for warnings."""
    server_env = {**os.environ, **env, "DATAFORGE_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, "-m", "devkit", "api", "serve", "--port", str(port)],
                            env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_listening(server: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while not port_open("127.0.0.1", port):
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("the API server did not start")
        time.sleep(0.2)


def _cold_then_fill(port: int, cold: list[tuple[str, str]], hot: list[tuple[str, str]]) -> tuple[list[float], int]:
    """Phase 1 on one connection: the ``cold`` requests (latencies in ms, errors), then each ``hot`` path
    once, so that the warm-up runs on a warm server."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    get(conn, "/v1/openapi.json")  # process start-up (imports) is not a cache miss
    latencies: list[float] = []
    errors = 0
    for _kind, path in cold:
        ok, elapsed = get(conn, path)
        latencies.append(elapsed)
        errors += not ok
    for _kind, path in hot:
        get(conn, path)
    conn.close()
    return latencies, errors


def _report(args: argparse.Namespace, items: int, cold: list[float], cold_errors: int, n_paths: int,
            by_kind: dict[str, list[float]], errors: int) -> None:
    cold = sorted(cold)
    every = sorted(v for values in by_kind.values() for v in values)
    p50, p99 = statistics.median(every), percentile(every, 0.99)
    print(f"KPI reads: {items} DynamoDB items ({args.days} days x {args.merchants} merchants + "
          f"{REALTIME_MINUTES_WRITTEN} realtime minutes) on moto; server: devkit/cli/api.py serve")
    print(f"cold (cache miss, 1 client, {len(cold)} distinct queries): errors={cold_errors} "
          f"p50={statistics.median(cold):.1f} ms p99={percentile(cold, 0.99):.1f} ms max={cold[-1]:.1f} ms")
    print(f"measured: {args.clients} keep-alive clients, {args.warmup:g} s warm-up + {args.seconds:g} s, "
          f"{n_paths} paths")
    for kind in sorted(by_kind):
        values = sorted(by_kind[kind])
        print(f"  {kind:10s} n={len(values):6d} p50={statistics.median(values):6.1f} ms "
              f"p99={percentile(values, 0.99):6.1f} ms")
    print(f"requests={len(every)} errors={errors} rps={len(every) / args.seconds:.1f}")
    print(f"p50={p50:.1f} ms p99={p99:.1f} ms")
    print(f"goal: p99 <= {GOAL_P99_MS:g} ms")
    print(f"ratio p99/goal = {p99 / GOAL_P99_MS:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds under load before measuring")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--cold", type=int, default=40, help="cache-miss requests measured first (one client)")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--merchants", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, MotoServer(logs_dir=Path(tmp)) as moto:
        moto.wait_ready()
        env = api_environment(moto.endpoint_url, prefix="dfbench")
        settings = Settings.from_env(env)
        session = fake_session()
        bootstrap(settings, session)
        days, merchants, items = _write_items(session, settings, args.days, args.merchants)
        port = free_port()
        server = _start_server(env, port)
        try:
            _wait_listening(server, port)
            paths = hot_paths(days, merchants)
            cold, cold_errors = _cold_then_fill(port, cold_paths(days, merchants, args.cold), paths)
            by_kind, errors = run_clients(port, args.clients, paths, args.warmup, args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=10)
    _report(args, items, cold, cold_errors, len(paths), by_kind, errors)


if __name__ == "__main__":
    main()
