"""The checks a drill plan asks of its restored copy: what each may say, and how a result
is judged. Pure: no database, no platform (steps/drill_checks.py runs them).

    sql         a query and an expected result: `select count(*) from orders` >= 1000;
                the expected value may be `target - rpo` (the drill's point less the plan's
                RPO objective) or `target - <n> hours|minutes|days`
    not_empty   each chosen table has at least one row
    newest_row  the newest value of a time column is inside the window: >= target - RPO
    amcheck     pg_amcheck (heap and btree) on every relation of a database, or chosen ones
    reconcile   row counts of chosen tables in the copy against the source (a "latest"
                drill only), the copy at most `tolerance` rows behind

Free SQL runs only in the scratch copy, read-only and under a statement timeout; the source
is only ever asked `count(*)` of tables named by validated identifiers.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

KINDS = ("sql", "not_empty", "newest_row", "amcheck", "reconcile")
COMPARISONS = (">=", ">", "=", "!=", "<=", "<")
_IDENT = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
TABLE_RE = re.compile(rf"^(?:{_IDENT}\.)?{_IDENT}$")
COLUMN_RE = re.compile(rf"^{_IDENT}$")
DATABASE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_$-]{0,62}$")
_RELATIVE = re.compile(r"^target\s*-\s*(rpo|(\d+)\s*(minutes?|hours?|days?))$")
MAX_QUERY = 4000
MAX_TOLERANCE = 10**12


class CheckError(ValueError):
    """A check a plan cannot hold, in words for the field it came from."""


def quote_table(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


# The queries the console writes itself: the names in them passed TABLE_RE / COLUMN_RE and
# are quoted as identifiers, so no value of a plan reaches them as SQL.
def exists_sql(table: str) -> str:
    return f"select exists (select 1 from {quote_table(table)})"  # noqa: S608


def newest_sql(table: str, column: str) -> str:
    return f"select max({quote_table(column)}) from {quote_table(table)}"  # noqa: S608


def count_sql(table: str) -> str:
    return f"select count(*) from {quote_table(table)}"  # noqa: S608


def _tables(value: Any, what: str) -> list[str]:
    if isinstance(value, str):
        value = [t.strip() for t in value.replace("\n", ",").split(",") if t.strip()]
    if not isinstance(value, list) or not value:
        raise CheckError(f"{what}: name at least one table.")
    bad = [t for t in value if not isinstance(t, str) or not TABLE_RE.match(t)]
    if bad:
        raise CheckError(f"{what}: {', '.join(map(str, bad))} is not a table name "
                         "(letters, digits and _, optionally schema.table).")
    return list(value)


def _database(spec: dict[str, Any], what: str) -> str:
    db = str(spec.get("database") or "postgres").strip()
    if not DATABASE_RE.match(db):
        raise CheckError(f"{what}: {db} is not a database name.")
    return db


def check_clean(spec: Any, *, index: int = 0) -> dict[str, Any]:
    """One check as the plan keeps it, or CheckError saying what is wrong."""
    if not isinstance(spec, dict):
        raise CheckError(f"Check {index + 1}: not a check.")
    kind = spec.get("kind")
    what = f"Check {index + 1} ({kind})" if kind else f"Check {index + 1}"
    if kind not in KINDS:
        raise CheckError(f"{what}: the kind must be one of {', '.join(KINDS)}.")
    db = _database(spec, what)
    name = str(spec.get("name") or "").strip()[:80]
    if kind == "sql":
        query = str(spec.get("query") or "").strip().rstrip(";").strip()
        if not query:
            raise CheckError(f"{what}: write the query.")
        if len(query) > MAX_QUERY or ";" in query:
            raise CheckError(f"{what}: one statement, without ';', at most {MAX_QUERY} "
                             "characters.")
        compare = str(spec.get("compare") or ">=")
        if compare not in COMPARISONS:
            raise CheckError(f"{what}: compare with one of {' '.join(COMPARISONS)}.")
        expected = str(spec.get("expected") or "").strip()
        if not expected:
            raise CheckError(f"{what}: say what the query must return.")
        return {"kind": kind, "name": name or query[:60], "database": db, "query": query,
                "compare": compare, "expected": expected}
    if kind == "not_empty":
        tables = _tables(spec.get("tables"), what)
        return {"kind": kind, "name": name or "critical tables not empty", "database": db,
                "tables": tables}
    if kind == "newest_row":
        table = str(spec.get("table") or "").strip()
        column = str(spec.get("column") or "").strip()
        if not TABLE_RE.match(table) or not COLUMN_RE.match(column):
            raise CheckError(f"{what}: name the table and its time column.")
        return {"kind": kind, "name": name or f"newest {table}.{column} inside the window",
                "database": db, "table": table, "column": column}
    if kind == "amcheck":
        relations = spec.get("relations") or []
        relations = _tables(relations, what) if relations else []
        return {"kind": kind, "name": name or "pg_amcheck", "database": db,
                "relations": relations}
    tables = _tables(spec.get("tables"), what)
    try:
        tolerance = int(spec.get("tolerance") or 0)
    except (TypeError, ValueError):
        raise CheckError(f"{what}: the tolerance is a number of rows.") from None
    if not 0 <= tolerance <= MAX_TOLERANCE:
        raise CheckError(f"{what}: the tolerance is a number of rows, 0 or more.")
    return {"kind": kind, "name": name or "reconciliation with the source", "database": db,
            "tables": tables, "tolerance": tolerance}


def checks_clean(specs: Any, *, point: str) -> list[dict[str, Any]]:
    if not isinstance(specs, list):
        raise CheckError("The checks are a list.")
    cleaned = [check_clean(s, index=i) for i, s in enumerate(specs)]
    if point != "latest" and any(c["kind"] == "reconcile" for c in cleaned):
        raise CheckError("A reconciliation compares with the source as it is now: it needs a "
                         "drill of the latest point.")
    return cleaned


def expected_value(expected: str, *, target: dt.datetime | None,
                   rpo_objective: float | None) -> str:
    """The expected value with `target - ...` worked out (ISO text), else as written."""
    match = _RELATIVE.match(expected.strip().lower())
    if not match:
        return expected
    if target is None:
        raise CheckError("the drill's point in time is unknown")
    if match.group(1) == "rpo":
        if rpo_objective is None:
            raise CheckError("`target - rpo` needs the plan's RPO objective")
        return (target - dt.timedelta(seconds=rpo_objective)).isoformat()
    n, unit = int(match.group(2)), match.group(3).rstrip("s")
    return (target - dt.timedelta(**{f"{unit}s": n})).isoformat()


def _as_time(text: str) -> dt.datetime | None:
    try:
        at = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def compare(found: str | None, how: str, expected: str) -> bool:
    """`found how expected` as numbers when both are, as instants when both are, else as
    text (= and != only). A NULL result never passes."""
    if found is None:
        return False
    a: Any
    b: Any
    try:
        a, b = float(found), float(expected)
    except ValueError:
        a, b = _as_time(found), _as_time(expected)
        if a is None or b is None:
            a, b = found.strip(), expected.strip()
            if how not in ("=", "!="):
                return False
    return {">=": a >= b, ">": a > b, "=": a == b, "!=": a != b, "<=": a <= b,
            "<": a < b}[how]


def describe(check: dict[str, Any]) -> str:
    """A check in a line, as the plan page and the report say it."""
    kind = check["kind"]
    if kind == "sql":
        return f"{check['query']} {check['compare']} {check['expected']} (in {check['database']})"
    if kind == "not_empty":
        return f"not empty: {', '.join(check['tables'])} (in {check['database']})"
    if kind == "newest_row":
        return (f"newest {check['table']}.{check['column']} >= target - RPO "
                f"(in {check['database']})")
    if kind == "amcheck":
        what = ", ".join(check["relations"]) or "every relation"
        return f"pg_amcheck, heap and btree, of {what} (in {check['database']})"
    return (f"row counts of {', '.join(check['tables'])} against the source, at most "
            f"{check['tolerance']} behind (in {check['database']})")
