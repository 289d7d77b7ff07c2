"""Bring up the local demo fleet: `hippo` with demo data and an initial full backup."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from restores import inventory, platforms
from restores.platforms.base import PlatformError


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
        except PlatformError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(
            f"Local fleet ready: {result.clusters} cluster(s); {name} is {status.role}. "
            f"Connect with: {status.connect_hint}"
        ))
