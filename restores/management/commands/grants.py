"""List every grant: who holds which role where."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from restores.models import Grant


class Command(BaseCommand):
    help = "List the console's grants, and its superusers (admins of every cluster)."

    def handle(self, *args: Any, **options: Any) -> None:
        for name in get_user_model().objects.filter(is_superuser=True).values_list(
                "username", flat=True):
            self.stdout.write(f"user {name}: admin on every cluster (superuser)")
        for grant in Grant.objects.select_related("user", "group"):
            self.stdout.write(str(grant))
