"""A clone / PITR wizard in progress."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from restores.models.inventory import Cluster
from restores.models.operations import Operation


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
