"""What the console does to a cluster: an Operation and its append-only events. Every change
goes through restores.models.transitions."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from restores.models.inventory import Cluster


class Operation(models.Model):
    class Kind(models.TextChoices):
        BACKUP = "backup", "backup"
        CLONE = "clone", "clone"
        RESTORE_IN_PLACE = "restore_in_place", "in-place restore"
        RESTORE_DATABASE = "restore_database", "database restore"
        CREATE_STANDBY = "create_standby", "create standby"
        SHUTDOWN = "shutdown", "shut down"
        START = "start", "start"
        PROMOTE = "promote", "promotion"
        DRILL = "drill", "drill"

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        PENDING = "pending", "pending"
        AWAITING_APPROVAL = "awaiting_approval", "awaiting approval"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"
        CANCELLED = "cancelled", "cancelled"

    ACTIVE = (Status.PENDING, Status.AWAITING_APPROVAL, Status.RUNNING)
    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=24, choices=Kind.choices)
    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="operations")
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # An exclusive operation changes its cluster: at most one may be active per cluster.
    exclusive = models.BooleanField(default=True)
    step = models.CharField(max_length=40, default="requested")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+",
    )
    # The two-person rule: a request awaits a second admin's approval until it expires.
    approved_at = models.DateTimeField(null=True, blank=True)
    approval_expires_at = models.DateTimeField(null=True, blank=True)
    # What the platform was asked to create or tag: names, annotation values, job records.
    refs = models.JSONField(default=dict, blank=True)
    # What the operation produced: a backup label, a new cluster's name, timings.
    result = models.JSONField(default=dict, blank=True)
    error_reason = models.TextField(blank=True)
    error_fix = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # Bumped on every recorded change; a progress poll answers 204 while it is unchanged.
    version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    next_check_at = models.DateTimeField(null=True, blank=True)
    # A worker holds the lease while it runs a step, so two deliveries of the same message
    # never call the platform at once.
    lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster"],
                condition=Q(exclusive=True, status__in=["pending", "awaiting_approval", "running"]),
                name="one_active_operation_per_cluster",
            ),
            # A drill changes nothing on its cluster (exclusive=False: backups go on), but
            # two at once would only race for the host's disk and measure each other.
            models.UniqueConstraint(
                fields=["cluster"],
                condition=Q(kind="drill", status__in=["pending", "awaiting_approval",
                                                      "running"]),
                name="one_active_drill_per_cluster",
            ),
        ]
        indexes = [
            # The beat sweep: active operations whose next check is due.
            models.Index(
                fields=["next_check_at"],
                condition=Q(status__in=["pending", "running"]),
                name="operation_due",
            ),
            # The cluster page: a cluster's operations, newest first.
            models.Index(fields=["cluster", "-created_at"], name="operation_cluster_recent"),
            # The drill report: every drill, newest first (and each cluster's last one).
            models.Index(fields=["-created_at"], condition=Q(kind="drill"),
                         name="operation_drills_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.cluster} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("restores:operation", kwargs={"operation_id": self.id})

    @property
    def is_terminal(self) -> bool:
        return self.status in self.TERMINAL

    @property
    def duration(self) -> dt.timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at


class OperationEvent(models.Model):
    """Append-only history of an operation: one row per real transition or observation."""

    class Level(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        ERROR = "error"

    operation = models.ForeignKey(Operation, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    step = models.CharField(max_length=40)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    message = models.TextField()
    # The exact command or API request applied, and what the platform reported.
    command = models.TextField(blank=True)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [
            # The operation page: an operation's events in order.
            models.Index(fields=["operation", "at"], name="event_operation_at"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.step}: {self.message}"
