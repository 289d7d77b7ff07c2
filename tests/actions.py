"""What a DBA or an auditor does in the tests, with the defaults a test does not care about:
ask for a backup, a drill, an in-place restore or a shutdown; run `audit_verify`."""

from __future__ import annotations

import io
from typing import Any

from django.core.management import call_command

from restores.models import Cluster, Operation
from restores.platforms.targets import RestoreTarget
from restores.services import backups, drills, inplace, power

LATEST = RestoreTarget(kind="latest")


def request_backup(cluster: Cluster, backup_type: str = "full", user: Any = None) -> Operation:
    return backups.backup_request(cluster=cluster, repo_name="repo1", backup_type=backup_type,
                                  user=user)


def request_drill(cluster: Cluster, point: RestoreTarget = LATEST, user: Any = None
                  ) -> Operation:
    return drills.drill_request(cluster=cluster, repo_name="repo1", point=point, user=user)


def request_in_place_restore(cluster: Cluster, point: RestoreTarget | None = None,
                             **kw: Any) -> Operation:
    """An in-place restore of repo1 to `point` (the latest by default), its name typed."""
    return inplace.restore_in_place_request(
        cluster=cluster, repo_name="repo1", point=point or RestoreTarget(), user=None,
        confirm=cluster.name, **kw)


def request_shutdown(cluster: Cluster, user: Any = None) -> Operation:
    return power.power_request(cluster=cluster, shutdown=True, user=user,
                               confirm=cluster.name)


def audit_verify(*args: str) -> tuple[int, str, str]:
    """audit_verify's exit code and output."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()
