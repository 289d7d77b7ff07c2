"""What the platforms report: clusters, their pgBackRest repos and the backups in them. The
inventory sync (restores/inventory.py) keeps them in step with the platforms."""

from __future__ import annotations

import datetime as dt

from django.db import models
from django.urls import reverse


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
    # The platform's labels (a PostgresCluster's metadata.labels): drill plans match them.
    labels = models.JSONField(default=dict, blank=True)
    # A drill's scratch copy: hidden from the Fleet by default, refused by every manual
    # action, deleted by its drill.
    drill = models.BooleanField(default=False)

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
