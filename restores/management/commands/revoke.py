"""Take a role away: the grant made with the same arguments.

    manage.py revoke --user alice --role admin
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from restores.management.commands.grant import grant_arguments
from restores.models import Grant
from restores.services.grants import grant_delete


class Command(BaseCommand):
    help = "Remove the grant a matching `manage.py grant` made."

    def add_arguments(self, parser: Any) -> None:
        grant_arguments(parser)

    def handle(self, *args: Any, **o: Any) -> None:
        who = Q(user__username=o["user"]) if o["user"] else Q(group__name=o["group"])
        grant = Grant.objects.filter(who, role=o["role"], platform=o["platform"],
                                     namespace=o["namespace"]).first()
        if grant is None:
            raise CommandError("No such grant (`manage.py grants` lists them).")
        text = str(grant)
        grant_delete(grant=grant, user=None)
        self.stdout.write(f"Revoked: {text}")
