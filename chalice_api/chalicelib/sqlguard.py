"""The query guard: one read-only statement over the lake's tables, for both engines (Athena, DuckDB).

An allow-list, not a deny-list. The submitted text is parsed as Athena (Trino) SQL with sqlglot and
judged on its syntax tree, never on its text; the engine receives SQL *generated* from the checked
tree (comments dropped), in its own dialect. A statement is accepted only when

- it is exactly one SELECT / WITH ... SELECT / set operation, at most ``MAX_SQL_CHARS`` characters
  and ``MAX_TOKENS`` tokens, with parentheses nested at most ``MAX_NESTING`` levels (larger or deeper
  text never reaches the recursive parser), that parses without backtracking beyond a budget
  proportional to its length (see ``_GuardedParser``);
- every node of its tree is of an allowed type: the query syntax in ``SYNTAX_NODES`` and the
  functions in ``FUNCTION_NODES`` (aggregates, math, string, date/time, conditional, casting and
  window functions), plus the Trino functions sqlglot keeps as ``exp.Anonymous`` whose lower-case
  name is in ``ANONYMOUS_FUNCTIONS`` whatever the quoting (``"current_setting"(...)`` is
  ``current_setting``, refused). The node type, not the spelling, decides what each engine runs:
  ``date_format`` is ``exp.TimeToStr`` and becomes DuckDB's ``strftime``. Words the generators print
  verbatim (units such as ``date_add('day', ...)``'s, unquoted identifiers) must be plain words, so
  no text can reach the generated SQL unescaped;
- every table source resolves, in its own scope (``sqlglot.optimizer.scope``), to a CTE visible
  there or to a table of an allowed database that the catalog knows. A CTE defined inside a
  subquery names nothing outside it, so ``sqlite_master``, ``duckdb_settings``, ``pg_settings``,
  ``information_schema`` or a quoted ``"s3://..."`` path are refused wherever they appear; so are
  table functions (``read_csv``, ``TABLE(...)``, ...);
- no string literal is a URL or file path.

Refusals are ``SqlRefusedError`` (400) with a code and a message naming the function, table or
syntax; parse failures of any kind, recursion included, are ``invalid_sql``. A row limit is
enforced: a ``LIMIT`` is added, or lowered to the maximum.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from typing import Any, Final

from sqlglot import exp
from sqlglot.dialects.trino import Trino
from sqlglot.errors import OptimizeError, ParseError, TokenError
from sqlglot.optimizer.scope import traverse_scope
from sqlglot.tokenizer_core import Token

from chalicelib.errors import SqlRefusedError

logger = logging.getLogger(__name__)

READ_DIALECT: Final = "trino"
ATHENA_CATALOG: Final = "awsdatacatalog"
MAX_SQL_CHARS: Final = 20_000
# Parsing costs per token (a few to a few dozen microseconds each, by shape): a token cap bounds the
# guard's CPU per request whatever the statement's shape.
MAX_TOKENS: Final = 5_000
# sqlglot's parser recurses about twenty Python frames per parenthesis level; 32 levels stay far
# from the interpreter's recursion limit and far above what analysts write.
MAX_NESTING: Final = 32
# Tokens the parser may step back over while backtracking, per token of the statement (plus a
# constant). Real queries step back less than one token per token; see _GuardedParser.
REWIND_PER_TOKEN: Final = 4
REWIND_CONSTANT: Final = 256

# Query syntax: clauses, operators, literals, references. Functions are listed below.
SYNTAX_NODES: Final[frozenset[type[exp.Expr]]] = frozenset({
    exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.With, exp.CTE, exp.From, exp.Join,
    exp.Where, exp.Group, exp.Cube, exp.Rollup, exp.GroupingSets, exp.Having, exp.Order, exp.Ordered,
    exp.Limit, exp.Fetch, exp.LimitOptions, exp.Offset, exp.Distinct, exp.Values, exp.Tuple, exp.Unnest,
    exp.Table, exp.TableAlias, exp.Alias, exp.Column, exp.Identifier, exp.Dot, exp.Star,
    exp.Literal, exp.Null, exp.Boolean, exp.Var, exp.Interval, exp.DataType, exp.DataTypeParam,
    exp.Paren, exp.And, exp.Or, exp.Not, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE,
    exp.NullSafeEQ, exp.NullSafeNEQ, exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Escape,
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.Neg, exp.DPipe, exp.Exists, exp.Any, exp.All,
    exp.Bracket, exp.AtTimeZone,
    exp.Window, exp.WindowSpec, exp.Filter, exp.WithinGroup, exp.IgnoreNulls, exp.RespectNulls,
})

# Functions analysts use on Athena, by the node sqlglot parses each Trino spelling into.
FUNCTION_NODES: Final[frozenset[type[exp.Expr]]] = frozenset({
    # aggregates: count, sum, avg, min, max, approx_distinct, approx_percentile, count_if, arbitrary /
    # any_value, bool_and, bool_or, stddev[_samp|_pop], variance / var_samp, var_pop, corr,
    # covar_samp, covar_pop, max_by, min_by, array_agg, listagg
    exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.ApproxDistinct, exp.ApproxQuantile, exp.CountIf,
    exp.AnyValue, exp.LogicalAnd, exp.LogicalOr, exp.Stddev, exp.StddevSamp, exp.StddevPop, exp.Variance,
    exp.VariancePop, exp.Corr, exp.CovarSamp, exp.CovarPop, exp.ArgMax, exp.ArgMin, exp.ArrayAgg,
    exp.GroupConcat,
    # math: abs, ceil / ceiling, floor, round, truncate, mod, power / pow, sqrt, cbrt, exp, ln, log,
    # log2, log10, sign, greatest, least, pi, degrees, radians, sin, cos, tan, asin, acos, atan, atan2,
    # width_bucket, is_nan, rand / random, from_base (mod is the operator %, in SYNTAX_NODES)
    exp.Abs, exp.Ceil, exp.Floor, exp.Round, exp.Trunc, exp.Pow, exp.Sqrt, exp.Cbrt, exp.Exp,
    exp.Ln, exp.Log, exp.Sign, exp.Greatest, exp.Least, exp.Pi, exp.Degrees, exp.Radians, exp.Sin,
    exp.Cos, exp.Tan, exp.Asin, exp.Acos, exp.Atan, exp.Atan2, exp.WidthBucket, exp.IsNan, exp.Rand,
    exp.FromBase,
    # string: lower, upper, length, substr / substring, trim, ltrim, rtrim, concat, concat_ws, ||,
    # replace, reverse, lpad, rpad, split, split_part, strpos / position, starts_with, format,
    # regexp_like, regexp_extract, regexp_replace, regexp_count, chr, levenshtein_distance, translate,
    # to_hex, md5, to_utf8, from_utf8, normalize
    exp.Lower, exp.Upper, exp.Length, exp.Substring, exp.Trim, exp.Concat, exp.ConcatWs, exp.Replace,
    exp.Reverse, exp.Pad, exp.Split, exp.SplitPart, exp.StrPosition, exp.StartsWith, exp.Format,
    exp.RegexpLike, exp.RegexpExtract, exp.RegexpReplace, exp.RegexpCount, exp.Chr, exp.Levenshtein,
    exp.Translate, exp.Hex, exp.MD5Digest, exp.Encode, exp.Decode, exp.Normalize,
    # date/time: date_trunc, date_add, date_diff, date_format, date_parse, parse_datetime,
    # from_iso8601_timestamp, from_iso8601_date, from_unixtime, to_unixtime, current_date,
    # current_timestamp / now, localtimestamp, current_timezone, year, month, day / day_of_month,
    # day_of_week / dow, day_of_year / doy, hour, minute, second, week / week_of_year, quarter,
    # year_of_week, last_day_of_month, extract, date, AT TIME ZONE
    exp.TimestampTrunc, exp.DateTrunc, exp.DateAdd, exp.DateDiff, exp.TimeToStr, exp.StrToTime,
    exp.ParseDatetime, exp.FromISO8601Timestamp, exp.FromISO8601Date, exp.UnixToTime, exp.TimeToUnix,
    exp.CurrentDate, exp.CurrentTimestamp, exp.Localtimestamp, exp.CurrentTimezone, exp.Year, exp.Month,
    exp.Day, exp.DayOfMonth, exp.DayOfWeekIso, exp.DayOfWeek, exp.DayOfYear, exp.Hour, exp.Minute,
    exp.Second, exp.WeekOfYear, exp.Quarter, exp.YearOfWeek, exp.LastDay, exp.Extract, exp.Date,
    # conditional and casting: coalesce, nullif, if, CASE, try, cast, try_cast, typeof
    exp.Coalesce, exp.Nullif, exp.If, exp.Case, exp.Try, exp.Cast, exp.TryCast, exp.Typeof,
    # arrays met in string handling: cardinality, contains, element_at, array_join, ARRAY[...]
    exp.ArraySize, exp.ArrayContains, exp.ArrayToString, exp.Array,
    # window: row_number, rank, dense_rank, ntile, percent_rank, cume_dist, lag, lead, first_value,
    # last_value, nth_value
    exp.RowNumber, exp.Rank, exp.DenseRank, exp.Ntile, exp.PercentRank, exp.CumeDist, exp.Lag, exp.Lead,
    exp.FirstValue, exp.LastValue, exp.NthValue,
})

# Trino functions sqlglot has no node for: passed by name to the engine, so each is harmless in
# both Trino and DuckDB (where DuckDB lacks one, the query fails at run time).
ANONYMOUS_FUNCTIONS: Final = frozenset({
    "geometric_mean", "every", "is_finite", "is_infinite", "nan", "infinity", "e", "to_base", "codepoint",
    "hamming_distance", "strrpos", "format_datetime", "to_iso8601", "millisecond", "timezone_hour",
    "timezone_minute", "with_timezone", "human_readable_seconds",
})

_TYPES: Final = frozenset({
    exp.DType.BOOLEAN, exp.DType.TINYINT, exp.DType.SMALLINT, exp.DType.INT, exp.DType.BIGINT,
    exp.DType.FLOAT, exp.DType.DOUBLE, exp.DType.DECIMAL, exp.DType.VARCHAR, exp.DType.CHAR, exp.DType.TEXT,
    exp.DType.VARBINARY, exp.DType.BINARY, exp.DType.DATE, exp.DType.TIME, exp.DType.TIMESTAMP,
    exp.DType.TIMESTAMPTZ, exp.DType.INTERVAL, exp.DType.ARRAY,
})
_STATEMENT_NODES: Final = (exp.DDL, exp.DML, exp.Command, exp.Into, exp.Set, exp.Pragma, exp.Use,
                           exp.Transaction, exp.Commit, exp.Rollback, exp.Describe, exp.Show, exp.Copy)
_WORD: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER: Final = re.compile(r"[\w$]+")
_URL_LITERAL: Final = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*://|file:)", re.IGNORECASE)
# A cheap tokenizer for the size checks: strings, quoted identifiers and comments (so their
# brackets do not count), words and numbers, any other character.
_TOKEN: Final = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|--[^\n]*|/\*.*?(?:\*/|\Z)|\w+|\S", re.DOTALL)


class _BacktrackingBudgetExceeded(Exception):
    """The parser stepped back over more tokens than its budget allows (not a ParseError, which
    the parser itself catches while trying alternatives)."""


class _GuardedParser(Trino.Parser):  # type: ignore[misc,valid-type]
    """Trino's parser with a budget on backtracking.

    sqlglot tries some constructs, steps back and parses them again another way; in a few shapes
    each retry doubles the work (a chain of JOINs without ON: 18 ``LEFT JOIN`` words take seconds),
    whatever the statement's length cap. Counting the tokens stepped back over bounds the parse to
    a small multiple of one pass over the tokens. sqlglot's compiled build (``sqlglotc``) forbids
    subclassing its parser: with it installed every statement would be refused, which the guard's
    tests show at once.
    """

    def parse(self, raw_tokens: list[Token], sql: str) -> list[exp.Expr | None]:
        self._rewind_budget = REWIND_PER_TOKEN * len(raw_tokens) + REWIND_CONSTANT
        result: list[exp.Expr | None] = super().parse(raw_tokens, sql)
        return result

    def _retreat(self, index: int) -> None:
        back = self._index - index
        if back > 0:
            self._rewind_budget -= back
            if self._rewind_budget < 0:
                raise _BacktrackingBudgetExceeded
        super()._retreat(index)


class _GuardedTrino(Trino):
    Parser = _GuardedParser


_DIALECT: Final = _GuardedTrino()


@dataclass(frozen=True, slots=True)
class GuardedQuery:
    """A checked statement: its tree (tables qualified with their database, limit enforced)."""

    tree: exp.Query
    databases: frozenset[str]
    limit: int

    def sql(self, dialect: str) -> str:
        try:
            return self.tree.sql(dialect=dialect, comments=False)
        except RecursionError:
            raise _refuse("invalid_sql", "the statement nests too deeply; simplify it") from None


def _refuse(code: str, message: str) -> SqlRefusedError:
    return SqlRefusedError(code, message)


def function_name(node: exp.Expr) -> str:
    """The lower-case name of a function node, as both engines resolve it (quotes do not matter)."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return node.key


def is_allowed_node(node: exp.Expr) -> bool:
    """Whether the node's type (or an anonymous function's name) is on the allow-lists."""
    kind = type(node)
    if kind is exp.Anonymous:
        return node.name.lower() in ANONYMOUS_FUNCTIONS and _WORD.fullmatch(node.name) is not None
    return kind in FUNCTION_NODES or kind in SYNTAX_NODES


def _check_size(sql: str) -> None:
    """Length, token count and bracket nesting, before the (recursive, backtracking) parser runs."""
    if len(sql) > MAX_SQL_CHARS:
        raise _refuse("sql_too_long", f"the statement has {len(sql)} characters; at most {MAX_SQL_CHARS} are allowed")
    tokens = _TOKEN.findall(sql)
    if len(tokens) > MAX_TOKENS:
        raise _refuse("sql_too_long", f"the statement has about {len(tokens)} tokens; at most {MAX_TOKENS} are"
                      " allowed")
    depth = deepest = 0
    for token in tokens:
        if token in ("(", "["):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (")", "]"):
            depth -= 1
    if deepest > MAX_NESTING:
        raise _refuse("invalid_sql", f"the statement nests parentheses {deepest} levels deep; at most {MAX_NESTING}"
                      " are allowed")


def _parse(sql: str) -> exp.Query:
    _check_size(sql)
    try:
        statements = [s for s in _DIALECT.parse(sql) if s is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else "syntax error"
        raise _refuse("invalid_sql", f"the SQL does not parse as Athena (Trino) SQL: {first[:300]}") from None
    except RecursionError:
        raise _refuse("invalid_sql", "the statement nests too deeply; simplify it") from None
    except _BacktrackingBudgetExceeded:
        raise _refuse("invalid_sql", "the statement is too ambiguous to parse in reasonable time (JOINs without ON?);"
                      " simplify it") from None
    except Exception as exc:  # noqa: BLE001 - sqlglot raises assorted errors on odd input; all mean "does not parse"
        logger.warning("sqlglot failed on a submitted statement: %s: %.200s", type(exc).__name__, exc)
        raise _refuse("invalid_sql", "the SQL does not parse as Athena (Trino) SQL") from None
    if len(statements) != 1:
        raise _refuse("multiple_statements" if statements else "invalid_sql",
                      "send exactly one SELECT (or WITH ... SELECT) statement, without ';'-separated statements")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise _refuse("statement_not_allowed",
                      f"only read-only SELECT / WITH queries are allowed, not {tree.key.upper()}")
    return tree


def _refused_node(node: exp.Expr) -> SqlRefusedError:
    if isinstance(node, exp.Func):
        return _refuse("function_not_allowed", f"function {function_name(node)}() is not allowed; see the list of"
                       " allowed functions in docs/api.md")
    if isinstance(node, _STATEMENT_NODES):
        return _refuse("statement_not_allowed",
                       f"{node.key.upper()} is not allowed: only read-only SELECT / WITH queries are")
    return _refuse("syntax_not_allowed", f"{node.key.upper()} is not allowed in queries")


def _check_identifier(node: exp.Identifier) -> None:
    if not node.quoted and not _IDENTIFIER.fullmatch(node.name):
        raise _refuse("syntax_not_allowed", f"identifier {node.name[:80]!r} must be double-quoted")


def _check_var(node: exp.Var) -> None:
    if not _WORD.fullmatch(node.name):
        raise _refuse("syntax_not_allowed", f"{node.name[:80]!r} is not a unit or keyword; write a plain word")


def _check_literal(node: exp.Literal) -> None:
    if node.is_string and _URL_LITERAL.match(node.name):
        raise _refuse("literal_not_allowed", "URLs and file paths are not allowed in queries; query catalog tables")


def _check_data_type(node: exp.DataType) -> None:
    if node.this not in _TYPES:
        raise _refuse("syntax_not_allowed", f"type {node.sql(dialect=READ_DIALECT)[:80]} is not allowed")


def _check_dot(node: exp.Dot) -> None:
    if not isinstance(node.expression, (exp.Identifier, exp.Star)):
        raise _refuse("syntax_not_allowed", f"{node.expression.key.upper()} after '.' is not allowed")


def _check_in(node: exp.In) -> None:
    if node.args.get("field") is not None or node.args.get("unnest") is not None:
        raise _refuse("syntax_not_allowed", "IN takes a parenthesized list or a subquery, as in Trino")


def _check_quantified(node: exp.Any | exp.All) -> None:
    if not isinstance(node.this, (exp.Subquery, exp.Query)):
        raise _refuse("syntax_not_allowed", f"{node.key.upper()} takes a subquery, as in Trino")


def _check_unnest(node: exp.Unnest) -> None:
    if not isinstance(node.parent, (exp.From, exp.Join)):
        raise _refuse("syntax_not_allowed", "UNNEST is allowed only in a FROM or JOIN clause")


def _check_table(node: exp.Table) -> None:
    if not isinstance(node.this, exp.Identifier):
        what = function_name(node.this) if isinstance(node.this, exp.Expr) else str(node.this)
        raise _refuse("function_not_allowed", f"table function {what}() is not allowed; query the catalog's tables")


# The per-type rules of syntax nodes whose content the generators may print verbatim, looked up by
# the node's exact type: the nodes checked are of the types in SYNTAX_NODES, none of which subclasses
# a different key here.
_NODE_CHECKS: Final[Mapping[type[exp.Expr], Callable[[Any], None]]] = {
    exp.Identifier: _check_identifier,
    exp.Var: _check_var,
    exp.Literal: _check_literal,
    exp.DataType: _check_data_type,
    exp.Dot: _check_dot,
    exp.In: _check_in,
    exp.Any: _check_quantified,
    exp.All: _check_quantified,
    exp.Unnest: _check_unnest,
    exp.Table: _check_table,
}


def _check_nodes(tree: exp.Query) -> list[exp.Table]:
    """Every node against the allow-lists; returns the tree's table nodes."""
    tables: list[exp.Table] = []
    for node in tree.walk(bfs=False):
        kind = type(node)
        if kind in FUNCTION_NODES:
            continue
        if not is_allowed_node(node):
            raise _refused_node(node)
        check = _NODE_CHECKS.get(kind)
        if check is not None:
            check(node)
        if kind is exp.Table:
            tables.append(node)  # type: ignore[arg-type]
    return tables


def _qualify(
    table: exp.Table, default_database: str | None, allowed_databases: Set[str], known_tables: Mapping[str, Set[str]],
) -> str:
    """Check a catalog table reference and rewrite it as ``database.table``; returns its database."""
    name, db, catalog = table.name.lower(), table.db.lower(), table.catalog.lower()
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
        raise _refuse("table_not_found", f"table {db}.{name[:120]} is not in the catalog; see GET /v1/catalog")
    table.set("catalog", None)
    table.set("db", exp.to_identifier(db))
    table.set("this", exp.to_identifier(name))
    return db


def _check_tables(
    tree: exp.Query, tables: list[exp.Table], default_database: str | None, allowed_databases: Set[str],
    known_tables: Mapping[str, Set[str]],
) -> frozenset[str]:
    """Resolve each table source in its scope: a CTE visible there, or a catalog table (qualified)."""
    used: set[str] = set()
    resolved: set[int] = set()
    for scope in traverse_scope(tree):
        visible_ctes = {name.lower() for name in scope.cte_sources}
        for table in scope.tables:
            resolved.add(id(table))
            if not table.args.get("db") and not table.args.get("catalog") and table.name.lower() in visible_ctes:
                continue
            used.add(_qualify(table, default_database, allowed_databases, known_tables))
    for table in tables:
        if id(table) not in resolved:
            raise _refuse("syntax_not_allowed", f"table {table.name[:120]!r} is not in a FROM or JOIN clause")
    return frozenset(used)


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
    tree = _parse(sql)
    try:
        tables = _check_nodes(tree)
        used = _check_tables(tree, tables, default_database, allowed_databases, known_tables)
    except RecursionError:
        raise _refuse("invalid_sql", "the statement nests too deeply; simplify it") from None
    except OptimizeError as exc:
        raise _refuse("invalid_sql", f"the statement's scopes do not resolve: {str(exc)[:200]}") from None

    existing = _limit_of(tree)
    limit = max_rows if existing is None else min(existing, max_rows)
    for arg in ("limit", "fetch"):
        if tree.args.get(arg) is not None:
            tree.set(arg, None)
    tree = tree.limit(limit, copy=False)
    return GuardedQuery(tree, used, limit)
