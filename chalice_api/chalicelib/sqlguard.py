"""The query guard: one read-only statement over allowed tables, for both engines (Athena, DuckDB).

The submitted text is parsed as Athena (Trino) SQL with sqlglot and judged on its syntax tree, never
on its text, so comments cannot hide a second statement: the engine receives SQL *generated* from
the checked tree (comments dropped), in its own dialect. Refused with ``SqlRefusedError`` (400):

- anything but exactly one SELECT / WITH ... SELECT / set operation (DDL, DML, SET, PRAGMA, COPY,
  ATTACH, INSTALL, LOAD, USE, ``SELECT ... INTO``, ...);
- tables outside the allowed databases or other catalogs, and tables the catalog does not know;
- table functions and functions that read files, URLs or engine state (``read_csv``, ``glob``, ...),
  and string literals that are URLs.

A row limit is enforced: a ``LIMIT`` is added, or lowered to the maximum.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Final

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from chalicelib.errors import SqlRefusedError

READ_DIALECT: Final = "trino"
ATHENA_CATALOG: Final = "awsdatacatalog"

_FORBIDDEN_NODES: Final = tuple(
    getattr(exp, name)
    for name in (
        "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "Command", "Set", "Pragma", "Copy",
        "Attach", "Detach", "Use", "Transaction", "Commit", "Rollback", "Grant", "LoadData", "Into", "Describe",
        "Show", "Install", "Summarize", "Kill", "Refresh", "Cache", "Uncache", "TruncateTable", "Analyze", "Export",
    )
    if hasattr(exp, name)
)
# Functions that read files, URLs, other databases or engine state, in DuckDB or Trino.
_FORBIDDEN_FUNCTIONS: Final = frozenset({
    "glob", "query", "query_table", "getenv", "current_setting", "sniff_csv", "load", "install", "which_secret",
    "system", "table", "http_get", "http_post", "file", "from_json_file", "iceberg_metadata", "delta_scan",
    "ducklake", "checkpoint", "force_checkpoint", "enable_profiling", "set_variable", "getvariable",
})
_FORBIDDEN_PREFIXES: Final = ("read_", "st_read", "parquet_", "sqlite_", "postgres_", "mysql_", "iceberg_", "delta_",
                              "duckdb_", "pragma_", "http", "json_execute", "excel_", "arrow_scan", "pandas_scan")
_URL_LITERAL: Final = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*://|file:)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class GuardedQuery:
    """A checked statement: its tree (tables qualified with their database, limit enforced)."""

    tree: exp.Query
    databases: frozenset[str]
    limit: int

    def sql(self, dialect: str) -> str:
        return self.tree.sql(dialect=dialect, comments=False)


def _refuse(code: str, message: str) -> SqlRefusedError:
    return SqlRefusedError(code, message)


def _function_name(node: exp.Func) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.this).lower()
    return node.sql_name().lower()


def _check_functions(tree: exp.Query) -> None:
    for node in tree.find_all(exp.Func):
        name = _function_name(node)
        if name in _FORBIDDEN_FUNCTIONS or name.startswith(_FORBIDDEN_PREFIXES) or name.endswith("_scan"):
            raise _refuse(
                "function_not_allowed",
                f"function {name}() is not allowed: queries may read only the catalog's tables, not files, URLs"
                " or engine settings",
            )
    for literal in tree.find_all(exp.Literal):
        if literal.is_string and _URL_LITERAL.match(str(literal.this)):
            raise _refuse("literal_not_allowed", "URLs and file paths are not allowed in queries; query catalog tables")


def _cte_names(tree: exp.Query) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def _limit_of(tree: exp.Query) -> int | None:
    """The literal row count of the root's LIMIT / FETCH FIRST, or None when absent or not a literal."""
    node = tree.args.get("limit") or tree.args.get("fetch")
    if node is None:
        return None
    count = node.args.get("count") if isinstance(node, exp.Fetch) else node.args.get("expression")
    if isinstance(count, exp.Literal) and not count.is_string and str(count.this).isdigit():
        return int(str(count.this))
    return None


def guard(
    sql: str,
    *,
    default_database: str | None,
    allowed_databases: Set[str],
    known_tables: Mapping[str, Set[str]],
    max_rows: int,
) -> GuardedQuery:
    """Check ``sql`` (Athena/Trino) and return the statement to run, or raise ``SqlRefusedError``."""
    if default_database is not None and default_database.lower() not in allowed_databases:
        raise _refuse("database_not_allowed", f"database {default_database!r} is not queryable; use one of"
                      f" {', '.join(sorted(allowed_databases))}")
    try:
        statements = [s for s in sqlglot.parse(sql, read=READ_DIALECT) if s is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise _refuse("invalid_sql", f"the SQL does not parse as Athena (Trino) SQL: {first[:300]}") from None
    if len(statements) != 1:
        raise _refuse("multiple_statements" if statements else "invalid_sql",
                      "send exactly one SELECT (or WITH ... SELECT) statement, without ';'-separated statements")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise _refuse("statement_not_allowed",
                      f"only read-only SELECT / WITH queries are allowed, not {tree.key.upper()}")
    forbidden = next(iter(tree.find_all(*_FORBIDDEN_NODES)), None) if _FORBIDDEN_NODES else None
    if forbidden is not None:
        raise _refuse("statement_not_allowed",
                      f"{forbidden.key.upper()} is not allowed: only read-only SELECT / WITH queries are")
    _check_functions(tree)

    ctes = _cte_names(tree)
    used: set[str] = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            raise _refuse("function_not_allowed", "table functions are not allowed; query the catalog's tables")
        name, db, catalog = table.name.lower(), table.db.lower(), table.catalog.lower()
        if not db and not catalog and name in ctes:
            continue
        if catalog and catalog != ATHENA_CATALOG:
            raise _refuse("catalog_not_allowed", f"catalog {catalog!r} is not queryable; use {ATHENA_CATALOG} or none")
        if not db:
            if default_database is None:
                raise _refuse("database_required",
                              f"table {name!r} has no database: write <database>.{name} or pass \"database\"")
            db = default_database.lower()
        if db not in allowed_databases:
            raise _refuse("database_not_allowed",
                          f"database {db!r} is not queryable; use one of {', '.join(sorted(allowed_databases))}")
        if name not in known_tables.get(db, ()):
            raise _refuse("table_not_found", f"table {db}.{name} is not in the catalog; see GET /v1/catalog")
        table.set("catalog", None)
        table.set("db", exp.to_identifier(db))
        table.set("this", exp.to_identifier(name))
        used.add(db)

    existing = _limit_of(tree)
    limit = max_rows if existing is None else min(existing, max_rows)
    for arg in ("limit", "fetch"):
        if tree.args.get(arg) is not None:
            tree.set(arg, None)
    tree = tree.limit(limit, copy=False)
    return GuardedQuery(tree, frozenset(used), limit)
