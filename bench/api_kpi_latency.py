"""KPI reads of the locally served API under N concurrent clients: p50 / p99 latency and requests/s.

    .venv/bin/python bench/api_kpi_latency.py [--clients 50] [--warmup 3] [--seconds 10] [--cold 40]
                                              [--days 30] [--merchants 10]

Starts a moto server, creates the resources (``bootstrap``), writes KPI items under ADR 0001's keys
and realtime minutes around now, serves the API in its own process (``dataforge/cli/api.py serve``,
cache TTLs from the environment or their defaults) and measures three phases:

1. cold: one client, ``--cold`` requests whose query was never asked before (every one a cache miss,
   so a DynamoDB round trip to moto) - the latency of a first dashboard load;
2. warm-up: each measured path asked once, then ``--clients`` keep-alive clients for ``--warmup`` s,
   not recorded;
3. measured: the same clients for ``--seconds`` s over a mix of daily ranges (platform, merchant +
   country, country breakdown), summary, merchants of a day and realtime windows. Realtime entries
   expire every few seconds, so this phase includes the misses a live dashboard causes.

Goal (issue 6): p99 <= 50 ms under 50 clients. The last two lines print the goal and measured/goal.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataforge.local import free_port, port_open  # noqa: E402
from dataforge.local.bootstrap import bootstrap  # noqa: E402
from dataforge.local.moto_server import MotoServer  # noqa: E402
from dataforge.settings import Settings  # noqa: E402
from tests.fixtures.api import API_KEY, api_environment, fake_session, put_kpis, put_realtime  # noqa: E402

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


def run_clients(port: int, clients: int, paths: list[tuple[str, str]], warmup: float,
                seconds: float) -> tuple[dict[str, list[float]], int]:
    """Closed loop: each client sends its next request when the previous answer arrived."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    errors = [0]
    lock = threading.Lock()
    start_gate = threading.Barrier(clients)

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[tuple[str, float]] = []
        failed = 0
        start_gate.wait()
        record_from = time.monotonic() + warmup
        stop_at = record_from + seconds
        i = n
        while (now := time.monotonic()) < stop_at:
            kind, path = paths[i % len(paths)]
            i += 1
            try:
                ok, elapsed = get(conn, path)
            except (OSError, http.client.HTTPException):
                ok, elapsed = False, 0.0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if now >= record_from:
                mine.append((kind, elapsed))
                failed += not ok
        conn.close()
        with lock:
            for kind, elapsed in mine:
                by_kind[kind].append(elapsed)
            errors[0] += failed

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return by_kind, errors[0]


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
        first = date(2024, 1, 1)
        days = [first + timedelta(days=n) for n in range(args.days)]
        merchants = [f"m_{n:03d}" for n in range(args.merchants)]
        items = put_kpis(session, settings, days, merchants)
        now = datetime.now(UTC)
        put_realtime(session, settings, [now - timedelta(minutes=m) for m in range(REALTIME_MINUTES_WRITTEN)])
        items += REALTIME_MINUTES_WRITTEN
        port = free_port()
        server_env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "DATAFORGE_LOG_LEVEL": "WARNING"}
        server = subprocess.Popen([sys.executable, str(ROOT / "dataforge/cli/api.py"), "serve", "--port", str(port)],
                                  env=server_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not port_open("127.0.0.1", port):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the API server did not start")
                time.sleep(0.2)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            get(conn, "/v1/openapi.json")  # process start-up (imports) is not a cache miss
            cold: list[float] = []
            cold_errors = 0
            for _kind, path in cold_paths(days, merchants, args.cold):
                ok, elapsed = get(conn, path)
                cold.append(elapsed)
                cold_errors += not ok
            paths = hot_paths(days, merchants)
            for _kind, path in paths:  # fill the cache once: the warm-up then runs on a warm server
                get(conn, path)
            conn.close()
            by_kind, errors = run_clients(port, args.clients, paths, args.warmup, args.seconds)
        finally:
            server.terminate()
            server.wait(timeout=10)

    cold.sort()
    every = sorted(v for values in by_kind.values() for v in values)
    p50, p99 = statistics.median(every), percentile(every, 0.99)
    print(f"KPI reads: {items} DynamoDB items ({args.days} days x {args.merchants} merchants + "
          f"{REALTIME_MINUTES_WRITTEN} realtime minutes) on moto; server: dataforge/cli/api.py serve")
    print(f"cold (cache miss, 1 client, {len(cold)} distinct queries): errors={cold_errors} "
          f"p50={statistics.median(cold):.1f} ms p99={percentile(cold, 0.99):.1f} ms max={cold[-1]:.1f} ms")
    print(f"measured: {args.clients} keep-alive clients, {args.warmup:g} s warm-up + {args.seconds:g} s, "
          f"{len(paths)} paths")
    for kind in sorted(by_kind):
        values = sorted(by_kind[kind])
        print(f"  {kind:10s} n={len(values):6d} p50={statistics.median(values):6.1f} ms "
              f"p99={percentile(values, 0.99):6.1f} ms")
    print(f"requests={len(every)} errors={errors} rps={len(every) / args.seconds:.1f}")
    print(f"p50={p50:.1f} ms p99={p99:.1f} ms")
    print(f"goal: p99 <= {GOAL_P99_MS:g} ms")
    print(f"ratio p99/goal = {p99 / GOAL_P99_MS:.2f}")


if __name__ == "__main__":
    main()
