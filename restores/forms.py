"""Forms check the shape of input; services check the rules."""

from __future__ import annotations

import datetime as dt

from django import forms

from restores.models import Backup, Cluster
from restores.platforms.targets import RestoreTarget

DRILL_TIME_NEEDED = "A point in time needs a date and time (UTC)."


class BackupForm(forms.Form):
    repo = forms.ChoiceField(label="Repo")
    backup_type = forms.ChoiceField(
        label="Type",
        choices=Backup.Type.choices,
        initial=Backup.Type.INCR,
        error_messages={"invalid_choice": "Choose a backup type: full, diff or incr."},
    )

    def __init__(self, *args: object, cluster: Cluster, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        names = list(cluster.repositories.order_by("name").values_list("name", flat=True))
        field = self.fields["repo"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(n, n) for n in names]
        field.error_messages["invalid_choice"] = (
            f"{cluster.name} has no such repo. Choose one of: {', '.join(names) or 'none'}."
        )
        if names:
            field.initial = names[0]


class ConfirmForm(forms.Form):
    """A typed confirmation: the cluster's name, exactly as typed (not stripped: "hippo "
    is not "hippo"); the service compares it."""

    confirm = forms.CharField(max_length=63, required=False, strip=False,
                              label="Type the cluster's name")


class PowerForm(ConfirmForm):
    """Shut down or start: the typed name, and for a former primary whose standby was
    promoted, the recorded acknowledgement that starting it makes a second primary."""

    acknowledge = forms.BooleanField(
        required=False,
        label="I understand this starts a second writable primary; applications stay away "
              "from it",
    )


class PromoteForm(ConfirmForm):
    primary_gone = forms.BooleanField(
        required=False,
        label="The old primary is down for good (a disaster, not a switchover)",
    )


class InPlaceOptionsForm(forms.Form):
    """What an in-place restore covers beyond its point: some databases only (from the set's
    own list), and whether the current state is backed up first."""

    db_include = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        label="Restore only these databases (none ticked: the whole cluster)",
    )
    safety_backup = forms.BooleanField(
        required=False, initial=True,
        label="First take a backup of the current state, so this restore can be undone",
    )

    def __init__(self, *args: object, databases: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        field = self.fields["db_include"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(n, n) for n in databases]
        field.error_messages["invalid_choice"] = (
            "%(value)s is not a database of the newest backup set; choose from the list."
        )


class RejectForm(forms.Form):
    reason = forms.CharField(max_length=500, label="Why it is rejected",
                             widget=forms.TextInput(attrs={"autocomplete": "off"}))


class StandbyForm(forms.Form):
    name = forms.CharField(max_length=63, label="Standby name")
    namespace = forms.CharField(max_length=63, label="Namespace")
    repo = forms.ChoiceField(label="Replay from repo")

    def __init__(self, *args: object, cluster: Cluster, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        names = list(cluster.repositories.order_by("name").values_list("name", flat=True))
        field = self.fields["repo"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(n, n) for n in names]
        self.fields["namespace"].initial = cluster.namespace
        self.fields["name"].initial = f"{cluster.name}-standby"[:63]
        if cluster.platform == "local":
            self.fields["namespace"].disabled = True


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
        names = list(cluster.repositories.filter(backups__isnull=False).distinct()
                     .order_by("name").values_list("name", flat=True))
        field = self.fields["repo"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(n, n) for n in names]
        field.error_messages["invalid_choice"] = (
            f"{cluster.name} has no such repo with a backup. Choose one of: "
            f"{', '.join(names) or 'none'}."
        )
        if names:
            field.initial = names[0]

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
