"""Create the first admin account, printing its generated password once."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the admin account if missing (password from DR_ADMIN_PASSWORD or generated)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default=os.getenv("DR_ADMIN_USER", "admin"))

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            self.stdout.write(
                f"Log in as {username!r} with the password printed when it was created "
                f"(reset it with: ./manage.py changepassword {username})."
            )
            return
        given = os.getenv("DR_ADMIN_PASSWORD")
        password = given or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if given:
            self.stdout.write(f"Created {username!r} with the password from DR_ADMIN_PASSWORD.")
        else:
            # Printed once, here, and stored only as a hash.
            self.stdout.write(self.style.SUCCESS(
                f"Created the admin account.\n  username: {username}\n  password: {password}\n"
                "  (shown once; change it with ./manage.py changepassword)"
            ))
