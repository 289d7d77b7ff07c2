"""What the console knows: clusters, their repos and backups, and the operations it runs.

Models are the source of truth the UI reads. The inventory task keeps clusters, repos and
backups in sync with the platforms; operations and their events are written only through
`restores.transitions` and the services.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone


class Cluster(models.Model):
    class Role(models.TextChoices):
        PRIMARY = "primary", "primary"
        STANDBY = "standby", "standby"
        SHUTDOWN = "shutdown", "shut down"
        UNKNOWN = "unknown", "unknown"

    platform = models.CharField(max_length=32)
    namespace = models.CharField(max_length=253)
    name = models.CharField(max_length=63)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.UNKNOWN)
    pg_version = models.CharField(max_length=16, blank=True)
    state = models.CharField(max_length=32, blank=True)
    state_message = models.TextField(blank=True)
    connect_hint = models.TextField(blank=True)
    # False once the platform no longer reports the cluster; kept for its history.
    present = models.BooleanField(default=True)
    # When the inventory sync last wrote the row (its status, every sync).
    synced_at = models.DateTimeField(null=True, blank=True)
    # When the platform last answered for the cluster's repos and backups, and the status
    # fingerprint it reported before that answer (ClusterStatus.fingerprint): the sync asks
    # again once the fingerprint moves or the answer is DR_REPO_MAX_AGE old.
    repos_synced_at = models.DateTimeField(null=True, blank=True)
    repos_fingerprint = models.CharField(max_length=64, blank=True)
    # The platform's conditions ([{"type", "status", "reason", "message", "since"}]) and its
    # newest warnings ([{"reason", "message", "at", "count"}]), as the last sync saw them.
    conditions = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["platform", "namespace", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "namespace", "name"], name="cluster_unique_name"
            )
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def get_absolute_url(self) -> str:
        return reverse(
            "restores:cluster",
            kwargs={"platform": self.platform, "namespace": self.namespace, "name": self.name},
        )


class Repository(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="repositories")
    name = models.CharField(max_length=16)  # repo1..repo4
    kind = models.CharField(max_length=16, default="posix")
    status_code = models.IntegerField(default=0)
    status_message = models.CharField(max_length=200, blank=True)
    earliest_recovery = models.DateTimeField(null=True, blank=True)
    latest_recovery = models.DateTimeField(null=True, blank=True)
    latest_wal = models.CharField(max_length=24, blank=True)
    oldest_wal = models.CharField(max_length=24, blank=True)
    backup_running = models.BooleanField(default=False)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cluster", "name"]
        verbose_name_plural = "repositories"
        constraints = [
            models.UniqueConstraint(fields=["cluster", "name"], name="repository_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.cluster}:{self.name}"


class Backup(models.Model):
    class Type(models.TextChoices):
        FULL = "full", "full"
        DIFF = "diff", "differential"
        INCR = "incr", "incremental"

    repository = models.ForeignKey(Repository, on_delete=models.CASCADE, related_name="backups")
    label = models.CharField(max_length=64)
    type = models.CharField(max_length=8, choices=Type.choices)
    started_at = models.DateTimeField()
    stopped_at = models.DateTimeField()
    database_size = models.BigIntegerField()
    delta_size = models.BigIntegerField()
    repo_size = models.BigIntegerField()
    repo_delta = models.BigIntegerField()
    wal_start = models.CharField(max_length=24)
    wal_stop = models.CharField(max_length=24)
    # The databases the set holds (for --db-include), read from the repo on first need.
    databases = models.JSONField(null=True, blank=True)
    lsn_start = models.CharField(max_length=32, blank=True)
    lsn_stop = models.CharField(max_length=32, blank=True)
    prior_label = models.CharField(max_length=64, blank=True)
    error = models.BooleanField(default=False)
    annotations = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["repository", "-stopped_at"]
        constraints = [
            models.UniqueConstraint(fields=["repository", "label"], name="backup_unique_label")
        ]
        indexes = [
            # The cluster page lists a repo's backups newest first; the fleet page reads the
            # newest backup of each repo.
            models.Index(fields=["repository", "-stopped_at"], name="backup_repo_newest"),
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def duration(self) -> dt.timedelta:
        return self.stopped_at - self.started_at


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


class CloneDraft(models.Model):
    """A clone / PITR wizard in progress, kept in the database so a reload, the back button
    and a second operator all see the same draft."""

    class Step(models.TextChoices):
        SOURCE = "source", "source"
        POINT = "point", "point"
        TARGET = "target", "target"
        REVIEW = "review", "review"

    STEPS = (Step.SOURCE, Step.POINT, Step.TARGET, Step.REVIEW)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    # The furthest step whose answers are complete and valid.
    reached = models.CharField(max_length=12, choices=Step.choices, default=Step.SOURCE)
    source = models.ForeignKey(
        Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    repo_name = models.CharField(max_length=16, blank=True)
    # A cloud repo with no live cluster (Kubernetes), instead of `source`: {"namespace",
    # "storage": s3|gcs|azure, "bucket", "endpoint", "region", "path", "stanza",
    # "configuration_secret", "postgres_version", "global": [[key, value]],
    # "backups_to_cloud"}. Names a Secret; never holds a credential.
    cloud = models.JSONField(default=dict, blank=True)
    # {"kind": "time", "time": "2026-11-24T10:14:03+00:00", "date", "clock", "zone",
    #  "exclusive", "label", "lsn", "xid", "name"}: what the point step stored
    point = models.JSONField(default=dict, blank=True)
    # {"name", "namespace", "storage", "process_max", "db_include": [...]}
    target = models.JSONField(default=dict, blank=True)
    operation = models.OneToOneField(
        Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="draft"
    )
    # Bumped on every save: a submit from a stale page is refused instead of applying answers
    # another operator has changed since.
    version = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return f"clone draft {self.id}"

    def get_absolute_url(self) -> str:
        return reverse("restores:clone_step", kwargs={"draft_id": self.id, "step": self.reached})

    def step_index(self, step: str) -> int:
        return [s.value for s in self.STEPS].index(step)

    @property
    def submitted(self) -> bool:
        return self.operation_id is not None


class Grant(models.Model):
    """A role, held by a user or by every member of a group (a team), over the clusters of a
    platform and namespace ("" = every one). A user's role on a cluster is the highest of the
    grants that cover it; superusers are admins everywhere. `restores.access` reads them."""

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


class AuditEntry(models.Model):
    """One action a user or a schedule took, append-only and hash-chained: `hash` covers the
    entry's content and the previous entry's hash, so changing or deleting a row breaks the
    chain at the next one (`manage.py audit_verify`). On PostgreSQL a trigger also refuses
    UPDATE and DELETE. Written by `restores.audit.record` in the transaction of the change it
    records; never holds a secret."""

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
