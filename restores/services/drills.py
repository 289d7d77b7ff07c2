"""DR drills: prove a cluster is recoverable without touching it.

A drill restores the cluster's repo into a scratch cluster (a clone that never writes to any
repo), verifies it, measures RTO and RPO, keeps the evidence in the operation's result, and
deletes the scratch cluster. `drill_request` is the service; drill_steps.py runs it; the
report's selectors are in drill_report.py.
"""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from restores import platforms, rules
from restores.models import Cluster, DrillRun, Operation
from restores.models.requests import repo_window, utc_text
from restores.platforms import manifests
from restores.platforms.base import ClusterRef, Platform, PlatformError
from restores.platforms.targets import RestoreTarget, target_to_json
from restores.services import access, live
from restores.services.errors import ServiceError
from restores.services.operations import operation_create

User = AbstractBaseUser | AnonymousUser | None

DRILL_CLUSTER_GONE = "{cluster} is no longer reported by its platform: there is nothing to drill."
DRILL_REPO_EMPTY = "{cluster} has no backup in {repo}: a drill has nothing to restore."
DRILL_POINT_KINDS = "A drill restores 'latest' or a point in time."
DRILL_ALREADY_RUNNING = (
    "A drill of {cluster} is already under way: wait for it to finish. A cluster has one "
    "drill at a time."
)
DRILL_NOT_ON_PLATFORM = (
    "The console cannot run drills on {platform} clusters yet: it cannot verify or delete a "
    "scratch copy there. Clone {cluster} with the wizard and check the copy by hand."
)
SCRATCH_NAME_INVALID = "The scratch cluster cannot be named {name}: {problem}"
SCRATCH_NAME_TAKEN = (
    "Something named {name} already exists in {namespace}, where the drill's scratch cluster "
    "would go. Nothing was started; run the drill again (it gets a new name)."
)

SCRATCH_INFIX = "-drill-"
# Local cluster names are at most 40 characters, PGO's at most 42 with a repo host: a
# scratch name stays within both.
SCRATCH_NAME_MAX = 40


def scratch_name(cluster_name: str, operation_id: uuid.UUID) -> str:
    """`<cluster>-drill-<6 hex of the operation id>`, the cluster's name shortened to fit."""
    suffix = f"{SCRATCH_INFIX}{operation_id.hex[:6]}"
    return cluster_name[: SCRATCH_NAME_MAX - len(suffix)].rstrip("-") + suffix


def drill_request(*, cluster: Cluster, repo_name: str, point: RestoreTarget, user: User,
                  run: DrillRun | None = None) -> Operation:
    """Start a drill of `cluster` from `repo_name` at `point` ("latest" or a time). `run`: the
    scheduled run of a plan it is (its checks and objectives come from the plan); without
    one, a manual drill's run is recorded with it."""
    access.require_cluster(user, "drill", cluster)
    if not cluster.present:
        raise ServiceError(DRILL_CLUSTER_GONE.format(cluster=cluster.name))
    platform = platforms.get(cluster.platform)
    if not platform.drills:
        raise ServiceError(DRILL_NOT_ON_PLATFORM.format(platform=platform.name,
                                                         cluster=cluster.name))
    if point.kind not in ("latest", "time"):
        raise ServiceError(DRILL_POINT_KINDS, field="kind")
    repo = cluster.repositories.filter(name=repo_name).first()
    if repo is None or not repo.backups.exists():
        raise ServiceError(DRILL_REPO_EMPTY.format(cluster=cluster.name, repo=repo_name),
                           field="repo")
    verdict = rules.check_point(point, repo_window(repo), now=timezone.now())
    if not verdict.ok:
        field, message = verdict.errors[0]
        raise ServiceError(message, field=field)
    if _active_drill(cluster):
        raise ServiceError(DRILL_ALREADY_RUNNING.format(cluster=cluster.name))
    # The scratch cluster's name is decided here, once, before anything is applied: every
    # step (and a retry after a crash) creates, verifies and deletes that one name.
    op_id = uuid.uuid4()
    scratch = ClusterRef(cluster.namespace, scratch_name(cluster.name, op_id))
    _check_scratch(platform, scratch)
    now = timezone.now()
    where = "latest" if point.time is None else utc_text(point.time)
    plan = run.plan if run is not None else None
    params = {"repo": repo_name, "point": target_to_json(point), "requested_at": now.isoformat()}
    if plan is not None:
        params.update(plan=plan.name, checks=plan.checks, objectives={
            "rto_seconds": plan.rto_objective_seconds, "rpo_seconds": plan.rpo_objective_seconds})
    scenario = {"repo": repo_name, "point": target_to_json(point),
                "point_rule": plan.point_text if plan else "chosen by hand",
                "scratch": f"{scratch.namespace}/{scratch.name}",
                "checks": params.get("checks", []), "policy": plan.policy if plan else ""}
    try:
        with transaction.atomic():
            op = operation_create(
                cluster=cluster, kind=Operation.Kind.DRILL, user=user, operation_id=op_id,
                exclusive=False, params=params,
                actor_name=f"schedule:{plan.name}" if plan is not None and user is None else None,
                refs={"scratch": {"namespace": scratch.namespace, "name": scratch.name}},
                message=f"Drill of {cluster.name} from {repo_name} at {where} requested"
                        + (f" by the plan {plan.name}" if plan else "")
                        + f": scratch cluster {scratch.name}.",
            )
            if run is None:
                run = DrillRun(cluster=cluster, slot_at=now)
            run.operation, run.outcome, run.scenario = op, DrillRun.Outcome.RUNNING, scenario
            run.rto_objective_seconds = plan.rto_objective_seconds if plan else None
            run.rpo_objective_seconds = plan.rpo_objective_seconds if plan else None
            run.save()
            return op
    except ServiceError:
        # Only the one-drill-per-cluster constraint can refuse a non-exclusive operation:
        # another request got there between the check above and this insert.
        raise ServiceError(DRILL_ALREADY_RUNNING.format(cluster=cluster.name)) from None


def _active_drill(cluster: Cluster) -> bool:
    return cluster.operations.filter(kind=Operation.Kind.DRILL,
                                     status__in=Operation.ACTIVE).exists()


def _check_scratch(platform: Platform, scratch: ClusterRef) -> None:
    try:
        manifests.check_cluster_name(scratch.name, scratch.namespace)
    except PlatformError as exc:
        raise ServiceError(SCRATCH_NAME_INVALID.format(name=scratch.name,
                                                       problem=exc.message)) from None
    taken = Cluster.objects.filter(platform=platform.name, namespace=scratch.namespace,
                                   name=scratch.name).exists()
    try:
        taken = taken or live.ask(platform.name, "is the scratch name free",
                                  lambda p: p.cluster_exists(scratch))
    except PlatformError as exc:
        raise ServiceError(exc.message) from None
    if taken:
        raise ServiceError(SCRATCH_NAME_TAKEN.format(name=scratch.name,
                                                     namespace=scratch.namespace))
