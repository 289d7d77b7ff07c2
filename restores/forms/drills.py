"""A drill's repo and point."""

from __future__ import annotations

import datetime as dt

from django import forms

from restores.forms.repos import offer_repos
from restores.models import Cluster
from restores.platforms.targets import RestoreTarget

DRILL_TIME_NEEDED = "A point in time needs a date and time (UTC)."


class DrillForm(forms.Form):
    """A drill's repo and point: the latest recoverable state, or a time (UTC)."""

    repo = forms.ChoiceField(label="Repo")
    kind = forms.ChoiceField(
        label="Restore to", widget=forms.RadioSelect, initial="latest",
        choices=[("latest", "Latest: replay all archived WAL"),
                 ("time", "A point in time (UTC)")],
    )
    at = forms.DateTimeField(
        required=False, label="Time (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}),
    )

    def __init__(self, *args: object, cluster: Cluster, **kwargs: object) -> None:
        # Its own ids: the backup form on the same page has a `repo` field too.
        kwargs.setdefault("auto_id", "drill_%s")
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        offer_repos(self, cluster, with_backups=True, refusal=(
            "{cluster} has no such repo with a backup. Choose one of: {names}."))

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if data.get("kind") == "time" and not data.get("at") and "at" not in self.errors:
            self.add_error("at", DRILL_TIME_NEEDED)
        return data

    @property
    def target(self) -> RestoreTarget:
        data = self.cleaned_data
        if data["kind"] != "time":
            return RestoreTarget(kind="latest")
        at: dt.datetime = data["at"]
        return RestoreTarget(kind="time", time=at.astimezone(dt.UTC))
