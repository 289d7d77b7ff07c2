"""The Celery application: Redis broker, tasks from restores.tasks, the beat schedule."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dr_console.settings")

app = Celery("dr_console")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _schedule(sender: Celery, **_: object) -> None:
    from django.conf import settings

    sender.add_periodic_task(
        float(settings.DR_SWEEP_INTERVAL), sender.signature("restores.sweep_operations"),
        name="sweep operations",
    )
    sender.add_periodic_task(
        float(settings.DR_INVENTORY_INTERVAL), sender.signature("restores.sync_inventory"),
        name="sync inventory",
    )
    sender.add_periodic_task(
        float(settings.DR_DRILL_BEAT_INTERVAL), sender.signature("restores.drill_beat"),
        name="drill schedule",
    )
