"""The local query runner (DuckDB over the lake's Parquet on the embedded S3) on typical dashboard
queries: p50 / p95 per query and overall, end to end (guard + translate + run + first results page).

    .venv/bin/python bench/query_runner_latency.py [--rows 1000000] [--days 10] [--repeat 10]

Starts a moto server, bootstraps, writes ``--rows`` silver rows as Parquet partitions (pyarrow +
``devkit.arrow.arrow_schema``) registered in Glue, then runs each query ``--repeat`` times (after one
warm-up) through ``QueryRunner``. Goal (issue 6): p95 <= 500 ms. Last two lines: goal and ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from chalicelib.config import ApiConfig

from dataforge.settings import Settings
from devkit.cli.api import local_services
from devkit.local.bootstrap import bootstrap
from devkit.local.moto_server import MotoServer
from tests.fixtures.api import api_environment, fake_session, silver_table, write_silver

GOAL_P95_MS = 500.0
QUERIES = {
    "daily volume": "SELECT event_date, count(*) AS txns, sum(amount_usd) AS volume FROM transactions "
                    "WHERE status = 'approved' GROUP BY event_date ORDER BY event_date",
    "top merchants (1 day)": "SELECT merchant_id, sum(amount_usd) AS volume FROM transactions WHERE event_date = "
                             "DATE '{last}' GROUP BY merchant_id ORDER BY volume DESC LIMIT 10",
    "decline rate by channel": "SELECT channel, avg(CASE WHEN status = 'declined' THEN 1.0 ELSE 0.0 END) AS rate "
                               "FROM transactions WHERE event_date >= DATE '{first}' GROUP BY channel",
    "hourly (1 day)": "SELECT date_trunc('hour', event_time) AS h, count(*) AS n FROM transactions "
                      "WHERE event_date = DATE '{last}' GROUP BY 1 ORDER BY 1",
    "accounts by country": "SELECT country, approx_distinct(account_id) AS accounts FROM transactions GROUP BY country",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, MotoServer(logs_dir=Path(tmp)) as moto:
        settings = Settings.from_env(api_environment(moto.endpoint_url, prefix="dfqbench"))
        session = fake_session()
        bootstrap(settings, session)
        days = [date(2024, 1, 1) + timedelta(days=n) for n in range(args.days)]
        per_day = args.rows // args.days
        started = time.perf_counter()
        write_silver(session, settings, {d: silver_table(per_day, d, seed=n * per_day) for n, d in enumerate(days)},
                     files_per_day=2)
        print(f"lake: {per_day * args.days} silver rows, {args.days} partitions, written in "
              f"{time.perf_counter() - started:.1f} s")
        services = local_services(ApiConfig.from_settings(settings), session=session)
        runner = services.runner()
        database = services.config.allowed_databases[0]
        every: list[float] = []
        try:
            for name, template in QUERIES.items():
                sql = template.format(first=days[len(days) // 2], last=days[-1])
                timings = []
                for attempt in range(args.repeat + 1):
                    t0 = time.perf_counter()
                    query_id = runner.start(sql, database)["query_id"]
                    while (status := runner.status(query_id))["status"] in ("QUEUED", "RUNNING"):
                        time.sleep(0.002)
                    if status["status"] != "SUCCEEDED":
                        raise SystemExit(f"{name}: {status}")
                    runner.results(query_id, max_results=100, next_token=None)
                    if attempt:  # the first run is the warm-up (views, file metadata cache)
                        timings.append((time.perf_counter() - t0) * 1000)
                timings.sort()
                every += timings
                print(f"{name:26s} p50={statistics.median(timings):7.1f} ms "
                      f"p95={timings[min(len(timings) - 1, int(len(timings) * 0.95))]:7.1f} ms")
        finally:
            services.close()
    every.sort()
    p95 = every[min(len(every) - 1, int(len(every) * 0.95))]
    print(f"all queries: n={len(every)} p50={statistics.median(every):.1f} ms p95={p95:.1f} ms")
    print(f"goal: p95 <= {GOAL_P95_MS:g} ms")
    print(f"ratio p95/goal = {p95 / GOAL_P95_MS:.2f}")


if __name__ == "__main__":
    main()
