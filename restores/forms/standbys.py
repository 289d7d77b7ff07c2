"""A new standby: its name, namespace and the repo it replays."""

from __future__ import annotations

from django import forms

from restores.forms.repos import offer_repos
from restores.models import Cluster


class StandbyForm(forms.Form):
    name = forms.CharField(max_length=63, label="Standby name")
    namespace = forms.CharField(max_length=63, label="Namespace")
    repo = forms.ChoiceField(label="Replay from repo")

    def __init__(self, *args: object, cluster: Cluster, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        offer_repos(self, cluster)
        self.fields["namespace"].initial = cluster.namespace
        self.fields["name"].initial = f"{cluster.name}-standby"[:63]
        if cluster.platform == "local":
            self.fields["namespace"].disabled = True
