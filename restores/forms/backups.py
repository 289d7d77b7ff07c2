"""The backup form: a repo of the cluster and a type."""

from __future__ import annotations

from django import forms

from restores.models import Backup, Cluster


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
