"""Coverage-guided fuzz target of the SQL guard (atheris, libFuzzer).

    .venv/bin/python tests/fuzz/fuzz_sqlguard.py -max_total_time=600 .cache/fuzz/fuzz_sqlguard

Each input becomes one statement, by the first byte's choice: raw text; a statement spliced from
the corpora (``tests.fixtures.sql_corpus``) with a fragment inserted or substituted; or a statement
assembled from SQL-ish pieces (keywords, allowed and hostile tables and functions, quoting, CTEs,
subqueries). The corpus directory is seeded with the corpora on start. ``guard`` with a small fake
catalog must either return or raise ``SqlRefusedError`` (anything else escaping is a crash), and an
accepted statement must satisfy the guard's promises, checked independently of its code:

- every node is on the allow-lists (node types, anonymous function names);
- every table resolves, in its scope, to a catalog table of an allowed database or a visible CTE;
- the root carries a literal LIMIT of at most the maximum;
- the SQL generated for each engine is produced without error, and DuckDB's own parser, reading the
  DuckDB SQL, finds no table function but UNNEST, only catalog tables and the query's CTEs, and no
  function outside those the allow-list translates to.
"""

from __future__ import annotations

import logging
import sys

import atheris

with atheris.instrument_imports(include=["sqlglot", "chalicelib"]):
    from chalicelib import sqlguard
    from chalicelib.errors import SqlRefusedError
    from sqlglot import exp
    from sqlglot.optimizer.scope import traverse_scope

import duckdb

from tests.fixtures.duckdb_parse import duckdb_refs
from tests.fixtures.sql_corpus import ALLOWED, FUNCTION_SAMPLES, HOSTILE
from tests.fuzz.seeds import seed_corpus

MAX_ROWS = 50
KNOWN = {"silver": frozenset({"transactions"}), "gold": frozenset({"daily_kpis"})}
ALLOWED_DATABASES = frozenset(KNOWN)
CATALOG_TABLES = {(db, table) for db, tables in KNOWN.items() for table in tables}

SEEDS = [sql.format(silver="silver", gold="gold") for sql in ALLOWED]
SEEDS += [sql.format(silver="silver", gold="gold") for sql, _ in HOSTILE if len(sql) < 4000]
SEEDS += [f"SELECT {call} AS v FROM transactions" for call in FUNCTION_SAMPLES.values()]
# Syntax DuckDB's parser turns into function calls of its own (a row for a tuple, a list for ARRAY[...], ...).
SEEDS += [
    "SELECT (1, 'a') = (1, 'a'), ARRAY[1, 2][1], 'a' || 'b', 'a' LIKE 'b' ESCAPE 'c', 'a' ILIKE 'b', 5 % 2, -1",
    "SELECT 1 IN (1, 2), 1 BETWEEN 0 AND 2, 1 IS DISTINCT FROM 2, 1 IS NOT DISTINCT FROM 2, NOT true",
    "SELECT INTERVAL '1' DAY, current_timestamp AT TIME ZONE 'UTC', 1 = ANY (SELECT 1), EXISTS (SELECT 1)",
    "SELECT CASE WHEN true THEN 1 END, event_date + INTERVAL '1' DAY FROM transactions",
    "SELECT a FROM UNNEST(ARRAY[1, 2]) AS t(a)",
]
PIECES = [
    "SELECT ", " FROM ", " WHERE ", " GROUP BY ", " ORDER BY ", " HAVING ", " LIMIT ", " UNION ALL ", " WITH ",
    " AS ", " JOIN ", " ON ", " CROSS JOIN ", " LEFT JOIN ", ", ", "(", ")", "[", "]", "*", " = ", " + ", " || ",
    " AND ", " OR ", " NOT ", " IN ", " EXISTS ", " CASE WHEN ", " THEN ", " ELSE ", " END ", " OVER (", " -> ",
    " FILTER (WHERE ", " UNNEST(", " LATERAL ", " TABLE(", " VALUES ", " INTERVAL '1' DAY ", " AT TIME ZONE ",
    "transactions", "silver.transactions", "gold.daily_kpis", "awsdatacatalog.silver.transactions",
    "sqlite_master", "main.sqlite_master", "pg_settings", "duckdb_settings", "duckdb_views", "duckdb_secrets",
    "information_schema.tables", "system.runtime.queries", "\"s3://bucket/x.parquet\"", "'s3://bucket/x'",
    "\"sqlite_master\"", "\"transactions\"", "\"Transactions\"", "x", "t", "cte", "a", "b",
    "current_setting", "\"current_setting\"", "\"CURRENT_SETTING\"", "getvariable", "\"getenv\"", "read_csv",
    "read_parquet", "glob", "query", "which_secret", "version", "sum", "\"sum\"", "count", "date_add", "date_diff",
    "date_trunc", "date_format", "extract", "coalesce", "if", "cast", "try_cast", "row_number", "lag", "format",
    "approx_distinct", "regexp_like", "split", "element_at", "geometric_mean", "e",
    "'day'", "'hour'", "'day FROM sqlite_master --'", "'%Y'", "1", "0.5", "NULL", "DATE '2024-01-02'",
    "amount_usd", "event_date", "event_time", "merchant_id", "\"amount_usd\"", "t.amount_usd", "x.y.z",
    "-- c\n", "/* c */", ";", "'", "\"", ".", "$1", "?", " AS double", " AS varchar)", " AS JSON)",
]



def statement(data: bytes) -> str:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())
    if mode == 1:
        base = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            at = fdp.ConsumeIntInRange(0, len(base))
            cut = fdp.ConsumeIntInRange(0, 12)
            fragment = fdp.PickValueInList(PIECES) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(8)
            base = base[:at] + fragment + base[at + cut:]
        return base
    parts = [fdp.PickValueInList(PIECES) for _ in range(fdp.ConsumeIntInRange(1, 60))]
    return "".join(parts)


def visible_tables_ok(tree: exp.Query) -> None:
    scoped: set[int] = set()
    for scope in traverse_scope(tree):
        ctes = {name.lower() for name in scope.cte_sources}
        for table in scope.tables:
            scoped.add(id(table))
            if table.args.get("db") is None and table.args.get("catalog") is None and table.name.lower() in ctes:
                continue
            assert table.args.get("catalog") is None, table.sql()
            assert (table.db, table.name) in CATALOG_TABLES, f"table {table.sql()} is neither a catalog table nor a CTE"
    for table in tree.find_all(exp.Table):
        assert id(table) in scoped, f"table {table.sql()} is outside every scope"


def _translated_functions() -> frozenset[str]:
    """The DuckDB functions the allow-list translates to (from the samples and the allowed corpus)."""
    conn = duckdb.connect()
    names: set[str] = set(sqlguard.ANONYMOUS_FUNCTIONS)
    for sql in SEEDS:
        try:
            checked = sqlguard.guard(sql, default_database="silver", allowed_databases=ALLOWED_DATABASES,
                                     known_tables=KNOWN, max_rows=MAX_ROWS)
        except SqlRefusedError:
            continue
        names |= duckdb_refs(checked.sql("duckdb"), conn).functions
    return frozenset(names)


DUCKDB_CONNECTION = duckdb.connect()
TRANSLATED = _translated_functions()


def check_accepted(checked: sqlguard.GuardedQuery) -> None:
    tree = checked.tree
    for node in tree.walk():
        assert sqlguard.is_allowed_node(node), f"{type(node).__name__} is not on the allow-lists"
    visible_tables_ok(tree)
    limit = tree.args.get("limit")
    assert isinstance(limit, exp.Limit), "no LIMIT on the root"
    count = limit.expression
    assert isinstance(count, exp.Literal), limit.sql()
    assert int(count.name) == checked.limit <= MAX_ROWS, limit.sql()
    checked.sql("trino")
    duck_sql = checked.sql("duckdb")
    try:
        refs = duckdb_refs(duck_sql, DUCKDB_CONNECTION)
    except ValueError:
        return  # DuckDB cannot parse the translation: the query fails at run time, reading nothing
    assert refs.table_functions <= {"unnest"}, f"{duck_sql}: table functions {refs.table_functions}"
    for _, schema, table in refs.tables:
        assert (schema, table) in CATALOG_TABLES or (not schema and table in refs.ctes), f"{duck_sql}: {table}"
    unknown = refs.functions - TRANSLATED
    assert not unknown, f"{duck_sql}: DuckDB functions {sorted(unknown)} are not translations of allowed ones"


def test_one_input(data: bytes) -> None:
    sql = statement(data)
    try:
        checked = sqlguard.guard(sql, default_database="silver", allowed_databases=ALLOWED_DATABASES,
                                 known_tables=KNOWN, max_rows=MAX_ROWS)
    except SqlRefusedError as refused:
        if refused.status != 400 or not refused.code or not refused.message:
            raise AssertionError(f"refusal without a 400, a code and a message: {refused!r}") from None
        return
    try:
        check_accepted(checked)
    except SqlRefusedError as refused:  # only GuardedQuery.sql may refuse (a tree too deep to print)
        if refused.code != "invalid_sql":
            raise AssertionError(f"accepted {sql!r}, then refused printing it: {refused!r}") from None
    except AssertionError as failure:
        raise AssertionError(f"accepted {sql!r}: {failure}") from None


def main() -> None:
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its warnings on odd input would drown the stats
    seed_corpus(sys.argv, [sql.encode() for sql in SEEDS])
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
