"""The audit log's rows (restores.models.auditlog writes and verifies them)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from restores.models.inventory import Cluster


class AuditEntry(models.Model):
    """One action a user or a schedule took, append-only and hash-chained: `hash` covers the
    entry's content and the previous entry's hash, so changing or deleting a row breaks the
    chain at the next one (`manage.py audit_verify`). On PostgreSQL a trigger also refuses
    UPDATE and DELETE. Written by `restores.models.auditlog.audit_record` in the transaction of
    the change it records; never holds a secret."""

    at = models.DateTimeField(default=timezone.now)
    # Who: the user (kept as a plain id: the row outlives the account) and a name that
    # stays readable ("system" for the console's own steps, "schedule:<plan>" later).
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.DO_NOTHING, db_constraint=False,
                              related_name="+")
    actor_name = models.CharField(max_length=150)
    address = models.CharField(max_length=64, blank=True)
    action = models.CharField(max_length=48)
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.DO_NOTHING,
                                db_constraint=False, related_name="+")
    # The scope a viewer's filter matches, and the cluster's name as it was then.
    platform = models.CharField(max_length=32, blank=True)
    namespace = models.CharField(max_length=253, blank=True)
    cluster_name = models.CharField(max_length=63, blank=True)
    operation_id = models.UUIDField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # The Audit page filtered by cluster, by user or by action, newest first.
            models.Index(fields=["cluster", "-id"], name="audit_cluster_recent"),
            models.Index(fields=["actor_name", "-id"], name="audit_actor_recent"),
            models.Index(fields=["action", "-id"], name="audit_action_recent"),
            # A viewer's scope: the entries of its platforms and namespaces.
            models.Index(fields=["platform", "namespace", "-id"], name="audit_scope_recent"),
            # The report of one operation's history.
            models.Index(fields=["operation_id"], name="audit_operation"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_name} {self.action}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("audit entries are append-only: an entry is never changed")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError("audit entries are append-only: an entry is never deleted")
