"""Who holds which role where: grants (restores.services.access reads them)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Grant(models.Model):
    """A role, held by a user or by every member of a group (a team), over the clusters of a
    platform and namespace ("" = every one). A user's role on a cluster is the highest of the
    grants that cover it; superusers are admins everywhere. `restores.services.access` reads
    them."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "viewer"
        OPERATOR = "operator", "operator"
        ADMIN = "admin", "admin"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.CASCADE, related_name="dr_grants")
    group = models.ForeignKey(Group, null=True, blank=True, on_delete=models.CASCADE,
                              related_name="dr_grants")
    role = models.CharField(max_length=16, choices=Role.choices)
    platform = models.CharField(max_length=32, blank=True,
                                help_text="Empty: every platform.")
    namespace = models.CharField(max_length=253, blank=True,
                                 help_text="Empty: every namespace of the platform.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["platform", "namespace", "role"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, group__isnull=True)
                | Q(user__isnull=True, group__isnull=False),
                name="grant_user_or_group",
            ),
            models.UniqueConstraint(fields=["user", "group", "role", "platform", "namespace"],
                                    name="grant_unique", nulls_distinct=False),
        ]

    def __str__(self) -> str:
        who = f"user {self.user}" if self.user_id else f"group {self.group}"
        where = "/".join(p or "*" for p in (self.platform, self.namespace))
        return f"{who}: {self.role} on {where}"

    @property
    def scope(self) -> str:
        if not self.platform:
            return "every cluster"
        return f"{self.platform}/{self.namespace or '*'}"
