"""Check the audit log's hash chain, and every sealed drill run against the hash the chain
holds for its evidence: exit 0 when all match, 1 naming the first broken entry and each run
whose stored result was changed (a row changed or deleted in the database).

    manage.py audit_verify                 # the whole chain
    manage.py audit_verify --head <hash>   # and the newest hash noted earlier is still in it
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from restores.models.auditlog import chain_verify
from restores.models.drills import evidence_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exit 1 naming the first broken entry."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--head", default=None,
                            help="a hash noted earlier (the Audit page shows the newest)")

    def handle(self, *args: Any, head: str | None, **options: Any) -> None:
        check = chain_verify(head=head)
        changed = evidence_verify()
        if check.ok:
            self.stdout.write(f"audit log intact: {check.entries} entries, head {check.head}")
        else:
            self.stderr.write(f"audit log BROKEN at entry #{check.broken_id}: {check.reason} "
                              f"({check.entries} entries verified before it)")
        for problem in changed:
            self.stderr.write(f"drill evidence CHANGED: {problem}")
        if not changed:
            self.stdout.write("drill evidence intact: every sealed run matches its hash")
        if not check.ok or changed:
            sys.exit(1)
