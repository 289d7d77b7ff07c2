"""Bring up the local demo fleet: `hippo` with demo data, an initial full backup and a nightly
drill plan."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from restores import inventory, platforms
from restores.models import DrillPlan
from restores.platforms.base import PlatformError
from restores.services.drill_plans import PlanAnswers, plan_save


class Command(BaseCommand):
    help = "Create (or start) the local demo cluster with data and a first full backup."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", default="hippo")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        local = platforms.get("local")
        try:
            status = local.cluster_create(name)  # type: ignore[attr-defined]
            ref = status.ref
            if not any(inv.backups for inv in local.repos(ref)):
                self.stdout.write(f"Loading demo data into {name} and taking a full backup…")
                local.load_demo_data(ref)  # type: ignore[attr-defined]
                job = local.backup_wait(  # type: ignore[attr-defined]
                    ref, repo="repo1", backup_type="full", operation_id=f"demo-{name}-initial"
                )
                if job.state != "succeeded":
                    raise CommandError(f"The initial backup of {name} failed: {job.message}")
            result = inventory.platform_sync(platform_name="local")
            plan = demo_plan(name, status.ref.namespace)
        except PlatformError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(
            f"Local fleet ready: {result.clusters} cluster(s); {name} is {status.role}. "
            f"Connect with: {status.connect_hint}"
        ))
        if plan is not None:
            self.stdout.write(f"Drill plan {plan.name!r}: {plan.schedule} ({plan.time_zone}).")


def demo_plan(name: str, namespace: str) -> DrillPlan | None:
    """A nightly drill of the demo cluster with a SQL check, pg_amcheck and objectives,
    unless a plan of that name exists (None then)."""
    title = f"{name} nightly"
    if DrillPlan.objects.filter(name=title).exists():
        return None
    return plan_save(user=None, answers=PlanAnswers(
        name=title, platform="local", scope="cluster", namespace=namespace, cluster_name=name,
        schedule="30 2 * * *", time_zone="UTC", rto_objective_seconds=600,
        rpo_objective_seconds=24 * 3600, policy="ISO 27001 A.8.13: backups tested nightly",
        checks=[{"kind": "sql", "name": "users are there", "database": name,
                 "query": "select count(*) from users", "compare": ">=", "expected": "1000"},
                {"kind": "not_empty", "database": name, "tables": ["users", "pgbench_accounts"]},
                {"kind": "amcheck", "database": name}]))
