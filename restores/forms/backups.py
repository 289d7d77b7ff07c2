"""The backup form: a repo of the cluster and a type."""

from __future__ import annotations

from django import forms

from restores.forms.repos import offer_repos
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
        offer_repos(self, cluster)
