"""Forms check the shape of input; services check the rules."""

from __future__ import annotations

from django import forms

from .models import Backup, Cluster


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
    """A typed confirmation: the cluster's name."""

    confirm = forms.CharField(max_length=63, required=False, label="Type the cluster's name")


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
