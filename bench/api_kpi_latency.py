"""KPI reads of the locally served API under N concurrent clients: p50 / p99 latency and requests/s.

    .venv/bin/python bench/api_kpi_latency.py [--clients 50] [--seconds 10] [--days 30] [--merchants 10]

Starts a moto server, creates the resources (``bootstrap``), writes KPI items under ADR 0001's keys,
serves the API in its own process (``dataforge/cli/api.py serve``) and drives it with keep-alive
clients (threads) cycling over daily-range, merchant, summary and merchants-of-a-day reads.
Goal (issue 6): p99 <= 50 ms. The last two lines print the goal and measured/goal.
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
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dataforge.local import free_port, port_open  # noqa: E402
from dataforge.local.bootstrap import bootstrap  # noqa: E402
from dataforge.local.moto_server import MotoServer  # noqa: E402
from dataforge.settings import Settings  # noqa: E402
from tests.fixtures.api import API_KEY, api_environment, fake_session, put_kpis  # noqa: E402

GOAL_P99_MS = 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--merchants", type=int, default=3)
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
            last = days[-1]
            paths = [
                f"/v1/kpis/daily?from={days[0]}&to={last}",
                f"/v1/kpis/daily?from={last - timedelta(days=6)}&to={last}&merchant_id=m_001&country=US",
                f"/v1/kpis/summary?date={last}",
                f"/v1/kpis/merchants?date={last}&limit=50",
            ]
            latencies: list[float] = []
            errors = [0]
            lock = threading.Lock()
            stop_at = time.monotonic() + 1.0 + args.seconds  # 1 s warm-up, not recorded
            record_from = time.monotonic() + 1.0

            def client(n: int) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                mine: list[float] = []
                i = n
                while (now := time.monotonic()) < stop_at:
                    path = paths[i % len(paths)]
                    i += 1
                    start = time.perf_counter()
                    try:
                        conn.request("GET", path, headers={"x-api-key": API_KEY})
                        response = conn.getresponse()
                        response.read()
                        ok = response.status == 200
                    except (OSError, http.client.HTTPException):
                        ok = False
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    elapsed = (time.perf_counter() - start) * 1000
                    if now >= record_from:
                        mine.append(elapsed)
                        if not ok:
                            with lock:
                                errors[0] += 1
                with lock:
                    latencies.extend(mine)

            threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            server.terminate()
            server.wait(timeout=10)

    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"KPI reads: {args.clients} concurrent clients, {args.seconds:g} s, {items} DynamoDB items "
          f"({args.days} days x {args.merchants} merchants), paths={len(paths)}")
    print(f"requests={len(latencies)} errors={errors[0]} rps={len(latencies) / args.seconds:.1f}")
    print(f"p50={p50:.1f} ms p99={p99:.1f} ms")
    print(f"goal: p99 <= {GOAL_P99_MS:g} ms")
    print(f"ratio p99/goal = {p99 / GOAL_P99_MS:.2f}")


if __name__ == "__main__":
    main()
