"""A drill plan's checks, run against the restored scratch copy (and, for a reconciliation,
read-only counts on the source), each with its evidence: what was run, what came back, when.

The checks themselves are described and judged in restores/checks.py; this module asks the
platform (Platform.query, Platform.amcheck) and turns each answer into a result row:

    {"check", "kind", "ok", "detail", "command", "result", "at"}

`detail` says in words why a check failed; a check that could not run (the query was
rejected, a table does not exist) fails, saying so, rather than stopping the drill.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.utils import timezone

from restores import checks as vocabulary
from restores.platforms.base import ClusterRef, PermanentError, Platform, PlatformError

SIZE_FLOOR = 0.5  # a copy under half its backup's database size lost data

DRILL_OBJECTIVES_MISSED = (
    "The drill restored and verified the copy, but missed its objectives: {missed}."
)
DRILL_OBJECTIVES_FIX = (
    "Recovery works but is slower (RTO) or loses more (RPO) than the plan allows: look at "
    "the restore's timings and the backup and WAL archiving schedule, or revise the objective."
)


def objectives_missed(figures: dict[str, Any], objectives: dict[str, Any]) -> list[str]:
    """Each objective the measured figures miss, in words ([] when all are met)."""
    missed = []
    for key, name in (("rto_seconds", "RTO"), ("rpo_seconds", "RPO")):
        goal, measured = objectives.get(key), figures.get(key)
        if goal is None:
            continue
        if measured is None:
            missed.append(f"the {name} could not be measured (objective {goal} s)")
        elif measured > goal:
            missed.append(f"{name} {measured} s exceeds the objective of {goal} s")
    return missed


def _row(check: dict[str, Any], ok: bool, detail: str, *, command: str = "",
         result: Any = None) -> dict[str, Any]:
    return {"check": check["name"], "kind": check["kind"], "ok": ok, "detail": detail,
            "command": command, "result": result,
            "at": timezone.now().isoformat(timespec="seconds")}


def size_check(restored_bytes: int, backup_bytes: int | None) -> dict[str, Any] | None:
    """The restored databases' size against the backup's (None: the backup's is unknown)."""
    if not backup_bytes:
        return None
    ratio = restored_bytes / backup_bytes
    ok = ratio >= SIZE_FLOOR
    detail = (f"{restored_bytes:,} bytes restored, {ratio:.0%} of the backup's "
              f"{backup_bytes:,}")
    if not ok:
        detail += f": under {SIZE_FLOOR:.0%}, data is missing"
    return _row({"name": "restored size", "kind": "size"}, ok, detail,
                result={"restored_bytes": restored_bytes, "backup_bytes": backup_bytes})


def run_checks(platform: Platform, scratch: ClusterRef, source: ClusterRef,
               specs: list[dict[str, Any]], *, target: dt.datetime | None,
               rpo_objective: float | None) -> list[dict[str, Any]]:
    timeout = float(settings.DR_DRILL_STATEMENT_TIMEOUT)
    rows = []
    for index, raw in enumerate(specs):
        # Cleaned again: a check stored by an older console (or by hand) fails in words.
        spec = {"name": str(raw.get("name") or f"check {index + 1}"),
                "kind": str(raw.get("kind") or "")} if isinstance(raw, dict) else {
                "name": f"check {index + 1}", "kind": ""}
        try:
            spec = vocabulary.check_clean(raw, index=index)
            rows.append(_one(platform, scratch, source, spec, target=target,
                             rpo_objective=rpo_objective, timeout=timeout))
        except vocabulary.CheckError as exc:
            rows.append(_row(spec, False, f"could not be judged: {exc}"))
        except PermanentError as exc:
            rows.append(_row(spec, False, f"could not run: {exc.message}",
                             command=exc.detail))
        except PlatformError:
            raise  # transient: the step is retried, every check again
    return rows


def _scalar(platform: Platform, ref: ClusterRef, sql: str, database: str,
            timeout: float) -> tuple[str | None, str]:
    answer = platform.query(ref, sql, database=database, timeout_s=timeout)
    value = answer.rows[0][0] if answer.rows and answer.rows[0] else None
    return value, answer.command


def _one(platform: Platform, scratch: ClusterRef, source: ClusterRef, spec: dict[str, Any], *,
         target: dt.datetime | None, rpo_objective: float | None,
         timeout: float) -> dict[str, Any]:
    kind, db = spec["kind"], spec["database"]
    if kind == "sql":
        expected = vocabulary.expected_value(spec["expected"], target=target,
                                             rpo_objective=rpo_objective)
        found, command = _scalar(platform, scratch, spec["query"], db, timeout)
        ok = vocabulary.compare(found, spec["compare"], expected)
        detail = f"returned {found if found is not None else 'NULL'}"
        detail += (f", {spec['compare']} {expected} as expected" if ok
                   else f", expected {spec['compare']} {expected}")
        return _row(spec, ok, detail, command=command,
                    result={"value": found, "expected": expected})
    if kind == "not_empty":
        empty, commands = [], []
        for table in spec["tables"]:
            sql = vocabulary.exists_sql(table)
            found, command = _scalar(platform, scratch, sql, db, timeout)
            commands.append(command)
            if found != "t":
                empty.append(table)
        detail = ("every one has rows: " + ", ".join(spec["tables"]) if not empty
                  else "empty: " + ", ".join(empty))
        return _row(spec, not empty, detail, command="\n".join(commands),
                    result={"empty": empty})
    if kind == "newest_row":
        if rpo_objective is None:
            raise vocabulary.CheckError("the plan has no RPO objective to measure it against")
        floor = vocabulary.expected_value("target - rpo", target=target,
                                          rpo_objective=rpo_objective)
        sql = vocabulary.newest_sql(spec["table"], spec["column"])
        found, command = _scalar(platform, scratch, sql, db, timeout)
        ok = vocabulary.compare(found, ">=", floor)
        detail = (f"newest {spec['column']} is {found or 'none (no rows)'}; the window starts "
                  f"at {floor}")
        if not ok:
            detail += ": the copy is missing the newest rows"
        return _row(spec, ok, detail, command=command, result={"newest": found, "floor": floor})
    if kind == "amcheck":
        verdict = platform.amcheck(scratch, database=db, relations=tuple(spec["relations"]))
        what = ", ".join(spec["relations"]) or "every relation"
        detail = (f"no corruption found in {what} of {db}" if verdict.ok
                  else f"found: {verdict.findings[:400]}")
        return _row(spec, verdict.ok, detail, command=verdict.command,
                    result={"findings": verdict.findings[:4000]})
    # reconcile: the copy's counts against the source's, read-only on both.
    behind, counts, commands = [], {}, []
    for table in spec["tables"]:
        sql = vocabulary.count_sql(table)
        copy, c1 = _scalar(platform, scratch, sql, db, timeout)
        now, c2 = _scalar(platform, source, sql, db, timeout)
        commands += [c1, c2]
        copy_n, now_n = int(copy or 0), int(now or 0)
        counts[table] = {"copy": copy_n, "source": now_n}
        if not 0 <= now_n - copy_n <= spec["tolerance"]:
            behind.append(f"{table} has {copy_n:,} rows in the copy, {now_n:,} in the source")
    detail = ("; ".join(behind) + f" (tolerance {spec['tolerance']:,} rows)" if behind else
              "within " + f"{spec['tolerance']:,} rows of the source: "
              + ", ".join(f"{t} {c['copy']:,}/{c['source']:,}" for t, c in counts.items()))
    return _row(spec, not behind, detail, command="\n".join(commands), result=counts)
