"""The audit report as data: a CSV of its runs (one row each, cells no spreadsheet reads as a
formula) and a JSON document (the summary a sign-off's digest covers, each run's scenario,
checks and figures, the sign-offs)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from restores import schedules
from restores.selectors.drill_report import ReportFacts, RunRow
from restores.selectors.drill_report_runs import note_line, run_line

CSV_HEADER = (
    "slot_at", "slot_at_utc", "cluster", "plan", "policy", "outcome", "repo", "point",
    "point_rule", "isolated_target", "checks_passed", "failed_checks", "rto_objective_seconds",
    "rto_seconds", "rpo_objective_seconds", "rpo_seconds", "reason", "remediation_status",
    "remediation_owner", "remediation_note", "evidence_sha256", "run", "operation",
)
# What a spreadsheet may take for the start of a formula (OWASP's list: = + - @ tab CR).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> str:
    """A text cell that never starts a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text[:1] in _FORMULA else text


def zoned(at: dt.datetime | None, tz: str) -> str:
    """An instant in the report's zone with its offset: 2026-11-24T10:00:00+01:00."""
    if at is None:
        return ""
    return at.astimezone(schedules.zone(tz)).isoformat(timespec="seconds")


def _utc(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).isoformat(timespec="seconds") if at else ""


def _num(value: float | int | None) -> str:
    return "" if value is None else str(value)


def point_words(point: Any) -> str:
    point = point if isinstance(point, dict) else {}
    if point.get("kind") == "time" and point.get("time"):
        return f"{point['time']}"
    return str(point.get("kind") or "latest")


def csv_rows(facts: ReportFacts, *, base_url: str = "") -> Iterator[list[str]]:
    """Every run of the report, oldest first, header first."""
    yield list(CSV_HEADER)
    tz = facts.selection.tz
    for r in facts.runs:
        run, scenario = r.run, r.run.scenario or {}
        yield [
            zoned(run.slot_at, tz), _utc(run.slot_at),
            cell(f"{run.cluster.platform}/{run.cluster.namespace}/{run.cluster.name}"),
            cell(run.plan.name if run.plan else "manual"),
            cell(run.plan.policy if run.plan else ""),
            run.outcome, cell(scenario.get("repo", "")), cell(point_words(scenario.get("point"))),
            cell(scenario.get("point_rule", "")), cell(r.target),
            f"{sum(1 for c in r.checks if c.get('ok'))}/{len(r.checks)}" if r.checks else "",
            cell("; ".join(r.failed_checks)), _num(run.rto_objective_seconds),
            _num(run.rto_seconds), _num(run.rpo_objective_seconds), _num(run.rpo_seconds),
            cell(run.reason), run.remediation_status,
            cell(run.remediation_owner.get_username() if run.remediation_owner else ""),
            cell(run.remediation_note), run.evidence_hash, str(run.pk),
            f"{base_url}/operations/{run.operation_id}/" if run.operation_id else "",
        ]


def _run_json(r: RunRow, tz: str) -> dict[str, Any]:
    run = r.run
    return {
        "run": run.pk, "plan": run.plan.name if run.plan else None,
        "policy": run.plan.policy if run.plan else "",
        "cluster": f"{run.cluster.platform}/{run.cluster.namespace}/{run.cluster.name}",
        "slot_at": zoned(run.slot_at, tz), "slot_at_utc": _utc(run.slot_at),
        "outcome": run.outcome, "reason": run.reason, "scenario": run.scenario,
        "isolated_target": r.target, "checks": r.checks,
        "rto": {"objective_seconds": run.rto_objective_seconds, "measured_seconds":
                run.rto_seconds, "met": r.rto_met},
        "rpo": {"objective_seconds": run.rpo_objective_seconds, "measured_seconds":
                run.rpo_seconds, "met": r.rpo_met},
        "deficient": r.deficient,
        "remediation": {"status": run.remediation_status, "note": run.remediation_note,
                        "owner": run.remediation_owner.get_username()
                        if run.remediation_owner else None} if r.deficient else None,
        "operation": str(run.operation_id) if run.operation_id else None,
        "evidence_sha256": run.evidence_hash or None,
        "sealed_at_utc": _utc(run.sealed_at) or None,
        # This run's line of summary.runs.sha256: SHA-256 of every run's line, oldest first,
        # joined by newlines.
        "hash_line": run_line(run.pk, run.outcome, run.evidence_hash),
        # A deficiency's line of summary.deficiencies.sha256 (the same way).
        "follow_up_line": note_line(run.pk, run.remediation_status,
                                    run.remediation_owner.get_username()
                                    if run.remediation_owner else None,
                                    run.remediation_note) if r.deficient else None,
    }


def report_json(facts: ReportFacts) -> dict[str, Any]:
    """The report as one JSON document; `summary` and `digest` are what a sign-off keeps.
    Every run's `hash_line` lets anyone check summary.runs.sha256 against the runs listed."""
    tz = facts.selection.tz
    return {
        "generated_at_utc": _utc(facts.generated_at),
        "summary": facts.summary,
        "digest_sha256": facts.digest,
        "coverage": [{"cluster": f"{c.cluster.platform}/{c.cluster.namespace}/"
                                 f"{c.cluster.name}", "plans": c.plans, "covered": c.covered,
                      "last_pass_utc": _utc(c.last_pass) or None, "why": c.why}
                     for c in facts.coverage],
        "runs": [_run_json(r, tz) for r in facts.runs],
        "signoffs": [{"signoff": s.pk, "digest_sha256": s.digest,
                      "matches": s.digest == facts.digest,
                      "prepared_by": s.prepared_by.get_username() if s.prepared_by else None,
                      "prepared_at": zoned(s.prepared_at, tz),
                      "signed_by": s.signed_by.get_username() if s.signed_by else None,
                      "signed_at": zoned(s.signed_at, tz) or None}
                     for s in facts.signoffs],
    }
