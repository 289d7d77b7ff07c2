"""The runs of a report's period, counted in the database and hashed from narrow rows: the
outcomes, each plan's runs, passes and deficiencies, and one SHA-256 over every run (its id,
outcome and evidence hash) that the sign-off's digest covers. A page of the report then reads
in full only the runs it shows.

A deficiency is a failed or missed run, or one whose measured RTO or RPO exceeds its
objective: `DEFICIENT` says it as a filter, `RunRow.deficient` (drill_report.py) in Python,
and the two agree.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from django.db.models import Count, F, Q

from restores.models import DrillRun

DEFICIENT = (Q(outcome__in=DrillRun.DEFICIENT) | Q(rto_seconds__gt=F("rto_objective_seconds"))
             | Q(rpo_seconds__gt=F("rpo_objective_seconds")))
# What the runs' hash covers: one line per run, `id|outcome|evidence SHA-256`, oldest first
# (slot, then id), joined by newlines. A sealed run's evidence hash already commits to its
# cluster, slot, checks, RTO and RPO (and audit_verify holds the columns to it); a run not
# sealed yet has none. The JSON export gives every run's line (`run_line`), so anyone can
# compute it again.
HASHED = ("id", "outcome", "evidence_hash")


def run_line(pk: int, outcome: str, evidence_hash: str) -> str:
    """One run's line of the runs' hash, as PostgreSQL writes it."""
    return f"{pk}|{outcome}|{evidence_hash or ''}"


@dataclasses.dataclass(frozen=True)
class RunStats:
    total: int
    outcomes: dict[str, int]
    by_plan: dict[int, tuple[int, int, int]]  # plan id: (runs, passed, deficient)
    deficient: int
    sha256: str  # over every run's line (run_line), oldest first
    notes_sha256: str  # over every deficiency's follow-up line (note_line), oldest first

    def runs_of(self, plan_id: int) -> tuple[int, int, int]:
        return self.by_plan.get(plan_id, (0, 0, 0))


def run_stats(runs: Any, *, hashed: bool = True) -> RunStats:
    """Three queries: the counts by plan and outcome, and the two hashes' rows (without
    `hashed`, one: the hashes are then "")."""
    outcomes: dict[str, int] = {}
    by_plan: dict[int, list[int]] = {}
    total = deficient = 0
    for plan_id, outcome, n, bad in (runs.order_by().values("plan_id", "outcome")
                                     .annotate(n=Count("id"),
                                               bad=Count("id", filter=DEFICIENT))
                                     .values_list("plan_id", "outcome", "n", "bad")):
        outcomes[outcome] = outcomes.get(outcome, 0) + n
        total, deficient = total + n, deficient + bad
        if plan_id is not None:
            counts = by_plan.setdefault(plan_id, [0, 0, 0])
            counts[0] += n
            counts[1] += n if outcome == DrillRun.Outcome.PASSED else 0
            counts[2] += bad
    runs_hash, notes_hash = hashes(runs) if hashed else ("", "")
    return RunStats(total, dict(sorted(outcomes.items())),
                    {k: (v[0], v[1], v[2]) for k, v in by_plan.items()}, deficient,
                    runs_hash, notes_hash)


def note_line(pk: int, status: str, owner: str | None, note: str) -> str:
    """One deficiency's line of the follow-ups' hash: `id|status|owner|note`."""
    return f"{pk}|{status or ''}|{owner or ''}|{note or ''}"


def hashes(runs: Any) -> tuple[str, str]:
    """(SHA-256 over every run's line, SHA-256 over every deficiency's follow-up line), both
    oldest first, joined by newlines: two narrow queries of tuples (every run's id, outcome
    and evidence hash; each deficiency's follow-up), hashed here. The same lines whatever
    the database, so anyone can compute them again from the JSON export."""
    ordered = runs.order_by("slot_at", "id")
    lines = "\n".join(f"{pk}|{outcome}|{sealed}" for pk, outcome, sealed
                      in ordered.values_list(*HASHED))
    notes = "\n".join(note_line(*row) for row in ordered.filter(DEFICIENT).values_list(
        "pk", "remediation_status", "remediation_owner__username", "remediation_note"))
    return (hashlib.sha256(lines.encode()).hexdigest(),
            hashlib.sha256(notes.encode()).hexdigest())


def chart_series(runs: Any, plan_ids: list[int]) -> dict[int, list[Any]]:
    """The runs of the chosen plans, light (what a chart draws), oldest first."""
    found: dict[int, list[Any]] = {}
    for run in (runs.filter(plan_id__in=plan_ids).select_related("cluster")
                .only("plan_id", "slot_at", "outcome", "rto_seconds", "rpo_seconds",
                      "rto_objective_seconds", "rpo_objective_seconds", "cluster__name")
                .order_by("slot_at", "id")):
        found.setdefault(run.plan_id, []).append(run)  # type: ignore[arg-type]
    return found
