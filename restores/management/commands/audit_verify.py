"""Check the audit log's hash chain: exit 0 when every entry matches, 1 naming the first
that does not (a row changed or deleted in the database).

    manage.py audit_verify                 # the whole chain
    manage.py audit_verify --head <hash>   # and the newest hash noted earlier is still in it
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from restores.models.auditlog import chain_verify


class Command(BaseCommand):
    help = "Verify the audit log's hash chain; exit 1 naming the first broken entry."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--head", default=None,
                            help="a hash noted earlier (the Audit page shows the newest)")

    def handle(self, *args: Any, head: str | None, **options: Any) -> None:
        check = chain_verify(head=head)
        if check.ok:
            self.stdout.write(f"audit log intact: {check.entries} entries, head {check.head}")
            return
        self.stderr.write(f"audit log BROKEN at entry #{check.broken_id}: {check.reason} "
                          f"({check.entries} entries verified before it)")
        sys.exit(1)
