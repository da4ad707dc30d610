"""The query guard on its own (no I/O): what passes, what is refused, the row limit, the rewrite."""

from __future__ import annotations

import pytest
from chalicelib.errors import SqlRefusedError
from chalicelib.sqlguard import guard

ALLOWED = frozenset({"silver", "gold"})
KNOWN = {"silver": frozenset({"transactions"}), "gold": frozenset({"daily_kpis"})}


def check(sql: str, database: str | None = "silver", max_rows: int = 100):  # type: ignore[no-untyped-def]
    return guard(sql, default_database=database, allowed_databases=ALLOWED, known_tables=KNOWN, max_rows=max_rows)


def test_tables_are_qualified_and_translated_to_duckdb() -> None:
    q = check("SELECT approx_distinct(account_id) FROM transactions t JOIN gold.daily_kpis g ON t.merchant_id = "
              "g.merchant_id")
    sql = q.sql("duckdb")
    assert "silver.transactions" in sql
    assert "gold.daily_kpis" in sql
    assert "APPROX_COUNT_DISTINCT" in sql
    assert sql.endswith("LIMIT 100")
    assert q.databases == {"silver", "gold"}


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELECT * FROM transactions", 100),
    ("SELECT * FROM transactions LIMIT 5", 5),
    ("SELECT * FROM transactions LIMIT 5000", 100),
    ("SELECT * FROM transactions FETCH FIRST 3 ROWS ONLY", 3),
    ("SELECT 1 AS a UNION ALL SELECT 2", 100),
])
def test_row_limit_is_enforced(sql: str, expected: int) -> None:
    q = check(sql)
    assert q.limit == expected
    assert q.sql("duckdb").endswith(f"LIMIT {expected}")


def test_ctes_and_catalog_prefix() -> None:
    q = check("WITH x AS (SELECT * FROM awsdatacatalog.silver.transactions) SELECT count(*) FROM x", database=None)
    assert "awsdatacatalog" not in q.sql("duckdb")


def test_comments_are_dropped_from_the_statement_sent() -> None:
    q = check("SELECT 1 /* ; DROP TABLE x */ -- ; DELETE\n")
    assert "DROP" not in q.sql("duckdb")
    assert "DELETE" not in q.sql("trino")


@pytest.mark.parametrize(("sql", "code"), [
    ("SELECT * FROM transactions; SELECT 1", "multiple_statements"),
    ("", "invalid_sql"),
    ("DROP TABLE transactions", "statement_not_allowed"),
    ("WITH d AS (DELETE FROM transactions) SELECT 1", "invalid_sql"),
    ("SELECT * FROM secrets.t", "database_not_allowed"),
    ("SELECT * FROM t", "table_not_found"),
    ("SELECT read_text('/etc/passwd')", "function_not_allowed"),
    ("SELECT * FROM silver.transactions WHERE x IN (SELECT * FROM read_json_auto('x'))", "function_not_allowed"),
    ("SELECT * FROM sqlite_scan('x.db', 't')", "function_not_allowed"),
    ("SELECT current_setting('s3_secret_access_key')", "function_not_allowed"),
    ("SELECT 'file:///etc/passwd'", "literal_not_allowed"),
])
def test_refusals(sql: str, code: str) -> None:
    with pytest.raises(SqlRefusedError) as info:
        check(sql)
    assert info.value.code in (code, "invalid_sql", "statement_not_allowed")
    assert info.value.message


def test_unqualified_table_without_default_database() -> None:
    with pytest.raises(SqlRefusedError, match="has no database"):
        check("SELECT * FROM transactions", database=None)
    with pytest.raises(SqlRefusedError, match="not queryable"):
        check("SELECT 1", database="other")
