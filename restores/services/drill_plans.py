"""Drill plans and deficiencies: create and edit a plan (operators and admins of the
clusters it covers), follow up a failed or missed run. Every change is an audit entry that
says what changed."""

from __future__ import annotations

import dataclasses
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from restores import checks, schedules
from restores.models import DrillPlan, DrillRun
from restores.models import auditlog as audit
from restores.platforms import manifests
from restores.platforms.base import PlatformError
from restores.services import access
from restores.services.errors import ServiceError

User = AbstractBaseUser | AnonymousUser | None

PLAN_CREATED = audit.DRILL_PLAN_CREATED
PLAN_CHANGED = audit.DRILL_PLAN_CHANGED
DEFICIENCY_CHANGED = audit.DRILL_REMEDIATION
PLAN_STALE = (
    "Someone changed this plan since you opened it: reload it and make your change again."
)
NAME_TAKEN = "A plan named {name} already exists."
OFFSET_NEEDED = "Say how long ago the point is (e.g. 24 hours)."
NOT_DEFICIENT = "Only a failed or missed run is a deficiency to follow up."
OWNER_UNKNOWN = "No user is named {name}."
MAX_OBJECTIVE = 7 * 24 * 3600


@dataclasses.dataclass(frozen=True)
class PlanAnswers:
    name: str
    platform: str
    scope: str
    namespace: str = ""
    cluster_name: str = ""
    name_pattern: str = ""
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    repo: str = "repo1"
    point: str = "latest"
    offset_seconds: int | None = None
    checks: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    rto_objective_seconds: int | None = None
    rpo_objective_seconds: int | None = None
    schedule: str = "0 3 * * *"
    time_zone: str = "UTC"
    owner: str = ""  # a username; "" = the user saving it
    policy: str = ""
    enabled: bool = True


def _clean(answers: PlanAnswers) -> dict[str, Any]:
    """The plan's fields, or ServiceError naming the field that is wrong."""
    name = " ".join(answers.name.split())
    if not name:
        raise ServiceError("Name the plan.", field="name")
    if answers.scope not in DrillPlan.Scope.values:
        raise ServiceError("Choose what the plan drills.", field="scope")
    if answers.scope in (DrillPlan.Scope.CLUSTER, DrillPlan.Scope.NAMESPACE) and not (
            answers.namespace):
        raise ServiceError("Name the namespace.", field="namespace")
    if answers.scope == DrillPlan.Scope.CLUSTER:
        try:
            manifests.check_cluster_name(answers.cluster_name, answers.namespace)
        except PlatformError as exc:
            raise ServiceError(exc.message, field="cluster_name") from None
    try:
        schedule = schedules.schedule_clean(answers.schedule, answers.time_zone)
    except schedules.ScheduleError as exc:
        field = "time_zone" if "time zone" in str(exc) else "schedule"
        raise ServiceError(str(exc), field=field) from None
    if answers.point not in DrillPlan.Point.values:
        raise ServiceError("Choose the point to restore to.", field="point")
    if answers.point == DrillPlan.Point.OFFSET and not answers.offset_seconds:
        raise ServiceError(OFFSET_NEEDED, field="offset_seconds")
    try:
        cleaned_checks = checks.checks_clean(answers.checks, point=answers.point)
    except checks.CheckError as exc:
        raise ServiceError(str(exc), field="checks") from None
    for field in ("rto_objective_seconds", "rpo_objective_seconds"):
        value = getattr(answers, field)
        if value is not None and not 0 < value <= MAX_OBJECTIVE:
            raise ServiceError("An objective is a number of seconds, at most a week.",
                               field=field)
    if not answers.repo.startswith("repo") or not answers.repo[4:].isdigit():
        raise ServiceError("A repo is named repo1 to repo4.", field="repo")
    return {
        "name": name[:100], "platform": answers.platform, "scope": answers.scope,
        "namespace": answers.namespace.strip(),
        "cluster_name": answers.cluster_name.strip() if answers.scope == "cluster" else "",
        "name_pattern": answers.name_pattern.strip() if answers.scope == "match" else "",
        "labels": dict(answers.labels) if answers.scope == "match" else {},
        "repo": answers.repo, "point": answers.point,
        "offset_seconds": answers.offset_seconds if answers.point == "offset" else None,
        "checks": cleaned_checks, "rto_objective_seconds": answers.rto_objective_seconds,
        "rpo_objective_seconds": answers.rpo_objective_seconds, "schedule": schedule,
        "time_zone": answers.time_zone, "policy": answers.policy.strip()[:200],
        "enabled": answers.enabled,
    }


def _owner(username: str, user: User) -> Any:
    if not username:
        return user if user is not None and user.is_authenticated else None
    owner = get_user_model().objects.filter(username=username).first()
    if owner is None:
        raise ServiceError(OWNER_UNKNOWN.format(name=username), field="owner")
    return owner


def plan_save(*, answers: PlanAnswers, user: User, plan: DrillPlan | None = None,
              version: int | None = None) -> DrillPlan:
    """Create a plan, or change `plan` (as of `version`, the one the form was drawn from).
    The user must be an operator where the plan drills (its platform and namespace)."""
    fields = _clean(answers)
    access.require(user, "drill", platform=fields["platform"],
                   namespace=fields["namespace"])
    if plan is not None:
        access.require(user, "drill", platform=plan.platform, namespace=plan.namespace)
    owner = _owner(answers.owner, user)
    taken = DrillPlan.objects.filter(name=fields["name"])
    if plan is not None:
        taken = taken.exclude(pk=plan.pk)
    if taken.exists():
        raise ServiceError(NAME_TAKEN.format(name=fields["name"]), field="name")
    now = timezone.now()
    with transaction.atomic():
        if plan is None:
            plan = DrillPlan.objects.create(**fields, owner=owner, created_by=_user(user),
                                            scheduled_through=now)
            audit.audit_record(action=PLAN_CREATED, user=user,
                               params={"plan": plan.pk, **_audited(plan)},
                               result=f"plan {plan.name} created")
            return plan
        before = _audited(plan)
        updated = DrillPlan.objects.filter(pk=plan.pk, version=version if version is not None
                                           else plan.version).update(
            **fields, owner=owner, updated_at=now, version=plan.version + 1,
            # A schedule changed, or a plan enabled again, starts from now: no slot is owed
            # for the old schedule, nor for the time it was disabled.
            **({"scheduled_through": now} if fields["schedule"] != plan.schedule
               or fields["time_zone"] != plan.time_zone
               or (fields["enabled"] and not plan.enabled) else {}))
        if not updated:
            raise ServiceError(PLAN_STALE)
        plan.refresh_from_db()
        after = _audited(plan)
        changed = {k: {"from": before[k], "to": after[k]} for k in after if before[k] != after[k]}
        audit.audit_record(action=PLAN_CHANGED, user=user,
                           params={"plan": plan.pk, "changed": changed},
                           result=f"plan {plan.name}: {', '.join(changed) or 'nothing'} changed")
    return plan


def _user(user: User) -> Any:
    return user if user is not None and user.is_authenticated else None


def _audited(plan: DrillPlan) -> dict[str, Any]:
    return {"name": plan.name, "platform": plan.platform, "scope": plan.scope,
            "namespace": plan.namespace, "cluster_name": plan.cluster_name,
            "name_pattern": plan.name_pattern, "labels": plan.labels, "repo": plan.repo,
            "point": plan.point, "offset_seconds": plan.offset_seconds, "checks": plan.checks,
            "rto_objective_seconds": plan.rto_objective_seconds,
            "rpo_objective_seconds": plan.rpo_objective_seconds, "schedule": plan.schedule,
            "time_zone": plan.time_zone, "policy": plan.policy, "enabled": plan.enabled,
            "owner": plan.owner.get_username() if plan.owner_id else None}


def deficiency_update(*, run: DrillRun, user: User, owner: str, note: str,
                      status: str) -> DrillRun:
    """Follow up a failed or missed run: who owns its remediation, what is done, its
    status. The run's evidence is never touched."""
    access.require(user, "drill", platform=run.cluster.platform,
                   namespace=run.cluster.namespace)
    if not run.deficient:
        raise ServiceError(NOT_DEFICIENT)
    if status not in DrillRun.Remediation.values:
        raise ServiceError("Choose a status.", field="status")
    owner_user = _owner(owner, None) if owner else None
    before = {"owner": run.remediation_owner.get_username() if run.remediation_owner_id
              else None, "note": run.remediation_note, "status": run.remediation_status}
    with transaction.atomic():
        DrillRun.objects.filter(pk=run.pk).update(
            remediation_owner=owner_user, remediation_note=note.strip()[:4000],
            remediation_status=status)
        run.refresh_from_db()
        after = {"owner": owner or None, "note": run.remediation_note,
                 "status": run.remediation_status}
        audit.audit_record(action=DEFICIENCY_CHANGED, user=user, cluster=run.cluster,
                           params={"run": run.pk, "from": before, "to": after},
                           result=f"deficiency of drill run #{run.pk}: {status}")
    return run
