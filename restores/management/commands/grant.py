"""Give a user, or every member of a group, a role over some clusters.

    manage.py grant --user alice --role admin                       # every cluster
    manage.py grant --group payments --role operator --platform kubernetes --namespace payments
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from restores.models import Grant
from restores.services.errors import ServiceError
from restores.services.grants import grant_create


def grant_arguments(parser: Any) -> None:
    """Who (a user or a group), which role, where: as `grant` and `revoke` both take them."""
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", default="")
    who.add_argument("--group", default="")
    parser.add_argument("--role", required=True, choices=Grant.Role.values)
    parser.add_argument("--platform", default="", help="empty: every platform")
    parser.add_argument("--namespace", default="", help="empty: every namespace")


class Command(BaseCommand):
    help = "Give a user or a group a role (viewer, operator, admin) on a platform/namespace."

    def add_arguments(self, parser: Any) -> None:
        grant_arguments(parser)
        parser.add_argument("--create-group", action="store_true",
                            help="create the group if it does not exist")

    def handle(self, *args: Any, **o: Any) -> None:
        try:
            grant = grant_create(role=o["role"], user=None, username=o["user"],
                                 group=o["group"], platform=o["platform"],
                                 namespace=o["namespace"], create_group=o["create_group"])
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Granted: {grant}")
