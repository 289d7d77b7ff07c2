"""A cluster's repos as a form's choices (the backup, drill and standby forms)."""

from __future__ import annotations

from django import forms

from restores.models import Cluster


def offer_repos(form: forms.Form, cluster: Cluster, *, with_backups: bool = False,
                refusal: str = "{cluster} has no such repo. Choose one of: {names}.") -> None:
    """The form's `repo` field offers the cluster's repos (those holding a backup, with
    `with_backups`), the first chosen; another value is refused naming them."""
    repos = cluster.repositories.all()
    if with_backups:
        repos = repos.filter(backups__isnull=False).distinct()
    names = list(repos.order_by("name").values_list("name", flat=True))
    field = form.fields["repo"]
    assert isinstance(field, forms.ChoiceField)
    field.choices = [(n, n) for n in names]
    field.error_messages["invalid_choice"] = refusal.format(
        cluster=cluster.name, names=", ".join(names) or "none")
    if names:
        field.initial = names[0]
