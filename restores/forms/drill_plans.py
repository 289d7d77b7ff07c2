"""A drill plan's form, and a deficiency's follow-up. The service (services/drill_plans.py)
checks everything again and says what is wrong next to the field."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from restores.checks import COMPARISONS
from restores.models import DrillPlan, DrillRun
from restores.services.drill_plans import PlanAnswers

LABELS_INVALID = "Write labels as key=value, one per line."
CHECKS_INVALID = "More checks are a JSON list of checks: {error}"
UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


def _tables(text: str) -> list[str]:
    return [t.strip() for t in text.replace("\n", ",").split(",") if t.strip()]


class PlanForm(forms.Form):
    name = forms.CharField(max_length=100)
    platform = forms.ChoiceField(choices=[("local", "local"), ("kubernetes", "kubernetes")])
    scope = forms.ChoiceField(choices=DrillPlan.Scope.choices, widget=forms.RadioSelect,
                              initial=DrillPlan.Scope.CLUSTER, label="Drills")
    namespace = forms.CharField(max_length=253, required=False)
    cluster_name = forms.CharField(max_length=63, required=False, label="Cluster")
    name_pattern = forms.CharField(max_length=100, required=False, label="Name pattern",
                                   help_text="A shell pattern: pay-* (empty: every name).")
    labels = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="key=value, one per line: every one must match.")
    repo = forms.CharField(max_length=16, initial="repo1")
    point = forms.ChoiceField(choices=DrillPlan.Point.choices, widget=forms.RadioSelect,
                              initial=DrillPlan.Point.LATEST, label="Restore to")
    offset = forms.IntegerField(required=False, min_value=1, label="How long ago")
    offset_unit = forms.ChoiceField(choices=[(u, u) for u in UNITS], initial="hours",
                                    required=False, label="Unit")
    schedule = forms.CharField(max_length=120, initial="0 3 * * 1",
                               help_text="cron: minute hour day month weekday.")
    time_zone = forms.CharField(max_length=64, initial="UTC", label="Time zone")
    rto_objective_seconds = forms.IntegerField(required=False, min_value=1,
                                               label="RTO objective (s)")
    rpo_objective_seconds = forms.IntegerField(required=False, min_value=1,
                                               label="RPO objective (s)")
    owner = forms.CharField(max_length=150, required=False,
                            help_text="A username (empty: you).")
    policy = forms.CharField(max_length=200, required=False,
                             help_text="What it serves: ISO 27001 A.8.13, monthly.")
    enabled = forms.BooleanField(required=False, initial=True)
    # The checks: one of each kind here, any number more as JSON.
    sql_query = forms.CharField(required=False, label="SQL check",
                                widget=forms.Textarea(attrs={"rows": 2}),
                                help_text="Run read-only in the copy: select count(*) from orders")
    sql_database = forms.CharField(required=False, label="in database")
    sql_compare = forms.ChoiceField(choices=[(c, c) for c in COMPARISONS], initial=">=",
                                    required=False, label="must be")
    sql_expected = forms.CharField(required=False, label="expected",
                                   help_text="A number, a time, or target - rpo.")
    tables_not_empty = forms.CharField(required=False, label="Critical tables not empty",
                                       help_text="Comma-separated: orders, payments.")
    tables_database = forms.CharField(required=False, label="in database")
    newest_row = forms.CharField(required=False, label="Newest row inside the window",
                                 help_text="table.column, a time column: orders.created_at")
    amcheck = forms.BooleanField(required=False, label="pg_amcheck (heap and btree)")
    amcheck_relations = forms.CharField(required=False, label="relations",
                                        help_text="Empty: every relation.")
    reconcile_tables = forms.CharField(required=False, label="Reconcile row counts of",
                                       help_text="Latest drills: the copy against the source.")
    reconcile_tolerance = forms.IntegerField(required=False, min_value=0, label="tolerance (rows)")
    more_checks = forms.CharField(required=False, label="More checks (JSON)",
                                  widget=forms.Textarea(attrs={"rows": 3}))
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean_labels(self) -> dict[str, str]:
        labels = {}
        for line in (self.cleaned_data.get("labels") or "").splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip():
                raise forms.ValidationError(LABELS_INVALID)
            labels[key.strip()] = value.strip()
        return labels

    def clean_more_checks(self) -> list[Any]:
        text = (self.cleaned_data.get("more_checks") or "").strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(CHECKS_INVALID.format(error=exc)) from None
        if not isinstance(value, list):
            raise forms.ValidationError(CHECKS_INVALID.format(error="not a list"))
        return value

    def checks(self) -> list[dict[str, Any]]:
        d = self.cleaned_data
        db = d.get("tables_database") or d.get("sql_database") or "postgres"
        found: list[dict[str, Any]] = []
        if d.get("sql_query"):
            found.append({"kind": "sql", "database": d.get("sql_database") or "postgres",
                          "query": d["sql_query"], "compare": d.get("sql_compare") or ">=",
                          "expected": d.get("sql_expected") or ""})
        if d.get("tables_not_empty"):
            found.append({"kind": "not_empty", "database": db,
                          "tables": _tables(d["tables_not_empty"])})
        if d.get("newest_row"):
            table, _, column = d["newest_row"].strip().rpartition(".")
            found.append({"kind": "newest_row", "database": db, "table": table,
                          "column": column})
        if d.get("amcheck"):
            found.append({"kind": "amcheck", "database": db,
                          "relations": _tables(d.get("amcheck_relations") or "")})
        if d.get("reconcile_tables"):
            found.append({"kind": "reconcile", "database": db,
                          "tables": _tables(d["reconcile_tables"]),
                          "tolerance": d.get("reconcile_tolerance") or 0})
        return found + list(d.get("more_checks") or [])

    def answers(self) -> PlanAnswers:
        d = self.cleaned_data
        offset = d.get("offset")
        return PlanAnswers(
            name=d["name"], platform=d["platform"], scope=d["scope"],
            namespace=d.get("namespace") or "", cluster_name=d.get("cluster_name") or "",
            name_pattern=d.get("name_pattern") or "", labels=d.get("labels") or {},
            repo=d.get("repo") or "repo1", point=d["point"],
            offset_seconds=offset * UNITS[d.get("offset_unit") or "hours"] if offset else None,
            checks=self.checks(), rto_objective_seconds=d.get("rto_objective_seconds"),
            rpo_objective_seconds=d.get("rpo_objective_seconds"), schedule=d["schedule"],
            time_zone=d["time_zone"], owner=d.get("owner") or "", policy=d.get("policy") or "",
            enabled=bool(d.get("enabled")))


def plan_initial(plan: DrillPlan) -> dict[str, Any]:
    """The form's fields for an existing plan (its first check of each kind in the fields,
    the rest as JSON)."""
    initial: dict[str, Any] = {
        "name": plan.name, "platform": plan.platform, "scope": plan.scope,
        "namespace": plan.namespace, "cluster_name": plan.cluster_name,
        "name_pattern": plan.name_pattern,
        "labels": "\n".join(f"{k}={v}" for k, v in (plan.labels or {}).items()),
        "repo": plan.repo, "point": plan.point, "schedule": plan.schedule,
        "time_zone": plan.time_zone, "rto_objective_seconds": plan.rto_objective_seconds,
        "rpo_objective_seconds": plan.rpo_objective_seconds,
        "owner": plan.owner.get_username() if plan.owner_id else "", "policy": plan.policy,
        "enabled": plan.enabled, "version": plan.version,
    }
    if plan.offset_seconds:
        unit = next(u for u in ("days", "hours", "minutes") if plan.offset_seconds % UNITS[u] == 0
                    ) if plan.offset_seconds % 60 == 0 else "minutes"
        initial.update(offset=plan.offset_seconds // UNITS[unit], offset_unit=unit)
    rest, seen = [], set()
    for check in plan.checks:
        kind = check["kind"]
        if kind in seen:
            rest.append(check)
            continue
        seen.add(kind)
        if kind == "sql":
            initial.update(sql_query=check["query"], sql_database=check["database"],
                           sql_compare=check["compare"], sql_expected=check["expected"])
        elif kind == "not_empty":
            initial.update(tables_not_empty=", ".join(check["tables"]),
                           tables_database=check["database"])
        elif kind == "newest_row":
            initial.update(newest_row=f"{check['table']}.{check['column']}")
        elif kind == "amcheck":
            initial.update(amcheck=True, amcheck_relations=", ".join(check["relations"]))
        else:
            initial.update(reconcile_tables=", ".join(check["tables"]),
                           reconcile_tolerance=check["tolerance"])
    if rest:
        initial["more_checks"] = json.dumps(rest, indent=1)
    return initial


class RemediationForm(forms.Form):
    owner = forms.CharField(max_length=150, required=False, help_text="A username.")
    status = forms.ChoiceField(choices=DrillRun.Remediation.choices)
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                           label="Remediation")
