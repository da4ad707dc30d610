"""The query guard's CPU time (``chalicelib.sqlguard.guard``: parse, allow-lists, scopes, limit) on a
typical dashboard query and on a 20,000-character statement; median over repeated runs.

Timed as the calling thread's CPU time (what a request costs the server, steady on a shared
machine); the wall-clock median is printed beside it.

    .venv/bin/python bench/sql_guard.py [--repeat 200] [--long-repeat 30]

The 20,000-character statement is an analyst's long one: a merchant IN list, a CASE mapping and
aggregates. Other 20,000-character shapes (long OR chains, hundreds of columns, JOINs or nested
parentheses) are printed for reference: they bound what a hostile client can cost per request
(the guard refuses those past ``MAX_TOKENS`` tokens before parsing).
Goals (issue 14): typical <= 2 ms, 20,000 characters <= 50 ms. Last two lines: goals and ratios.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from chalicelib import sqlguard
from chalicelib.errors import SqlRefusedError

GOAL_TYPICAL_MS = 2.0
GOAL_LONG_MS = 50.0
LENGTH = sqlguard.MAX_SQL_CHARS
KNOWN = {"silver": frozenset({"transactions"}), "gold": frozenset({"daily_kpis"})}
TYPICAL = ("SELECT merchant_id, sum(amount_usd) AS volume FROM transactions WHERE event_date = DATE '2024-01-03' "
           "GROUP BY merchant_id ORDER BY volume DESC LIMIT 10")


def _tokens(text: str) -> int:
    return len(sqlguard._TOKEN.findall(text))


def _fill(head: str, item: Callable[[int], str], sep: str, tail: str, *, within_tokens: bool = False) -> str:
    """``head`` + as many ``item(n)`` joined by ``sep`` as fit + ``tail``: at most ``LENGTH`` characters and,
    ``within_tokens``, at most the guard's token cap."""
    items: list[str] = []
    size, tokens = len(head) + len(tail), _tokens(head) + _tokens(tail)
    n = 0
    while size + len(sep) + len(item(n)) <= LENGTH and (
            not within_tokens or tokens + _tokens(sep + item(n)) <= sqlguard.MAX_TOKENS):
        size += len(item(n)) + (len(sep) if items else 0)
        tokens += _tokens(item(n)) + (_tokens(sep) if items else 0)
        items.append(item(n))
        n += 1
    return head + sep.join(items) + tail


def analyst_statement() -> str:
    cases = " ".join(f"WHEN merchant_id = 'm_{n:04d}' THEN 'segment_{n % 17}'" for n in range(120))
    head = (f"SELECT CASE {cases} ELSE 'other' END AS segment, country, count(*) AS txns, "
            "sum(amount_usd) AS volume, approx_distinct(account_id) AS accounts, "
            "avg(CASE WHEN status = 'declined' THEN 1.0 ELSE 0.0 END) AS decline_rate FROM transactions "
            "WHERE event_date BETWEEN DATE '2024-01-01' AND DATE '2024-01-31' AND merchant_id IN (")
    return _fill(head, lambda n: f"'m_{n:05d}'", ", ", ") GROUP BY 1, 2 ORDER BY volume DESC")


SHAPES: dict[str, Callable[[], str]] = {
    "OR chain": lambda: _fill("SELECT count(*) FROM transactions WHERE ", lambda n: f"risk_score = {n}", " OR ", ""),
    "columns": lambda: _fill("SELECT ", lambda n: f"sum(amount_usd) AS c{n}", ", ", " FROM transactions"),
    "JOINs": lambda: _fill("SELECT count(*) FROM transactions t ",
                           lambda n: f"JOIN transactions t{n} ON t{n}.event_id = t.event_id", " ", ""),
    "UNION ALL": lambda: _fill("", lambda n: f"SELECT {n} AS a FROM transactions", " UNION ALL ", ""),
    "parentheses x30": lambda: _fill("SELECT ", lambda n: "(" * 30 + str(n) + ")" * 30, ", ", ""),
    "identifiers": lambda: _fill("SELECT ", lambda n: "a", ",", " FROM transactions"),
    "columns, token cap": lambda: _fill("SELECT ", lambda n: f"sum(amount_usd) AS c{n}", ", ", " FROM transactions",
                                        within_tokens=True),
    "parentheses x30, token cap": lambda: _fill("SELECT ", lambda n: "(" * 30 + str(n) + ")" * 30, ", ", "",
                                                within_tokens=True),
    "identifiers, token cap": lambda: _fill("SELECT ", lambda n: "a", ",", " FROM transactions",
                                            within_tokens=True),
}


def guard_ms(sql: str) -> tuple[float, float, str]:
    """(CPU ms, wall ms, "accepted" or the refusal's code)."""
    cpu, wall = time.thread_time(), time.perf_counter()
    try:
        sqlguard.guard(sql, default_database="silver", allowed_databases=frozenset(KNOWN), known_tables=KNOWN,
                       max_rows=10_000)
        outcome = "accepted"
    except SqlRefusedError as refused:
        outcome = refused.code
    return (time.thread_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000, outcome


def measure(name: str, sql: str, repeat: int) -> float:
    """Print and return the median CPU ms of ``repeat`` guard calls (after one warm-up)."""
    outcome = guard_ms(sql)[2]
    cpu, wall = [], []
    for _ in range(repeat):
        gc.collect()
        c, w, _ = guard_ms(sql)
        cpu.append(c)
        wall.append(w)
    median = statistics.median(cpu)
    print(f"{name:32s} {len(sql):6d} chars  cpu median {median:7.2f} ms  wall median {statistics.median(wall):7.2f} ms"
          f"  ({outcome})")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--long-repeat", type=int, default=30)
    args = parser.parse_args()
    typical = measure("typical dashboard query", TYPICAL, args.repeat)
    long = measure("analyst statement", analyst_statement(), args.long_repeat)
    for name, build in SHAPES.items():
        measure(f"  shape: {name}", build(), max(5, args.long_repeat // 3))
    print(f"goal: typical <= {GOAL_TYPICAL_MS:g} ms, {LENGTH:,} characters <= {GOAL_LONG_MS:g} ms")
    print(f"ratio median/goal = typical {typical / GOAL_TYPICAL_MS:.2f}, "
          f"{LENGTH:,} characters {long / GOAL_LONG_MS:.2f}")


if __name__ == "__main__":
    main()
