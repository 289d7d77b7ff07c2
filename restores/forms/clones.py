"""The clone wizard's other steps: the source (a live cluster's repo, or a cloud repo), and the
new cluster (name, namespace, size, parallelism, databases, the restore Job's placement)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator
from django.db.models import QuerySet

from restores.models import Cluster, Repository
from restores.parsing import whole_number
from restores.platforms.restore_options import PROCESS_MAX_LIMIT
from restores.platforms.secrets import is_credential


class SourceForm(forms.Form):
    source = forms.ModelChoiceField(
        queryset=Cluster.objects.none(), label="Source cluster", empty_label=None,
        error_messages={"invalid_choice": "Pick a cluster the console knows."},
    )
    repo = forms.ChoiceField(label="Repo to restore from")

    def __init__(self, *args: Any, sources: QuerySet[Cluster], source: Cluster | None = None,
                 **kwargs: Any) -> None:
        """`sources`: the clusters offered (selectors.clusters.clone_sources, for the user)."""
        super().__init__(*args, **kwargs)
        field = self.fields["source"]
        assert isinstance(field, forms.ModelChoiceField)
        self.sources = sources
        field.queryset = self.sources
        chosen = self._chosen(source)
        repos = (
            Repository.objects.filter(cluster=chosen, backups__isnull=False).distinct()
            .order_by("name").values_list("name", flat=True) if chosen else []
        )
        repo = self.fields["repo"]
        assert isinstance(repo, forms.ChoiceField)
        repo.choices = [(r, r) for r in repos]
        repo.error_messages["invalid_choice"] = (
            "Pick one of the source's repos that holds a backup."
        )

    def _chosen(self, source: Cluster | None) -> Cluster | None:
        if self.is_bound:
            pk = whole_number(self.data.get("source"), minimum=1)
            return self.sources.filter(pk=pk).first() if pk else None
        return source


GLOBAL_LINE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}=\S{1,200}$")


GLOBAL_LINE_INVALID = "Line {n} is not a pgBackRest setting like repo1-s3-uri-style=path: {line}"


GLOBAL_LINE_CREDENTIAL = (
    "Line {n} sets {key}, a credential: the console never takes one in a form. Put it in the "
    "Secret named under Credentials Secret (as s3.conf, gcs.conf or azure.conf), where PGO "
    "reads it."
)


def key_value_lines(text: str, pattern: re.Pattern[str], invalid: str
                    ) -> tuple[tuple[str, str], ...]:
    """`key=value` lines (blank ones skipped); the first line `pattern` refuses is the
    error, `invalid` formatted with its number `n` and the `line`."""
    pairs = []
    lines = [line.strip() for line in text.splitlines()]
    for n, line in enumerate((x for x in lines if x), start=1):
        if not pattern.match(line):
            raise forms.ValidationError(invalid.format(n=n, line=line[:80]))
        key, value = line.split("=", 1)
        pairs.append((key, value))
    return tuple(pairs)


class CloudSourceForm(forms.Form):
    """A cloud repo that no live cluster uses (Kubernetes: spec.dataSource.pgbackrest).
    Credentials stay in a Secret in the namespace; the console only names it."""

    namespace = forms.ChoiceField(label="Namespace of the new cluster and of the Secret")
    storage = forms.ChoiceField(
        label="Storage", widget=forms.RadioSelect, initial="s3",
        choices=[("s3", "S3 (or S3-compatible)"), ("gcs", "Google Cloud Storage"),
                 ("azure", "Azure Blob Storage")],
    )
    bucket = forms.CharField(max_length=222, label="Bucket (Azure: container)")
    endpoint = forms.CharField(required=False, max_length=260, label="S3 endpoint",
                               widget=forms.TextInput(attrs={"placeholder":
                                                             "s3.ca-central-1.amazonaws.com"}))
    region = forms.CharField(required=False, max_length=63, label="S3 region",
                             widget=forms.TextInput(attrs={"placeholder": "ca-central-1"}))
    path = forms.CharField(
        required=False, max_length=1000, label="Repo path of the source",
        widget=forms.TextInput(attrs={"placeholder": "/pgbackrest/postgres-operator/hippo/repo1"}),
        help_text="The source cluster's repoN-path; empty for PGO's default /pgbackrest/repoN.",
    )
    repo_name = forms.ChoiceField(label="Repo", initial="repo1",
                                  choices=[(f"repo{n}", f"repo{n}") for n in range(1, 5)])
    stanza = forms.CharField(max_length=253, initial="db", label="Stanza",
                             help_text="PGO's clusters use db.")
    configuration_secret = forms.CharField(
        required=False, max_length=253, label="Credentials Secret",
        widget=forms.TextInput(attrs={"placeholder": "pgo-s3-creds"}),
        help_text="The Secret holding the repo's pgBackRest credentials (e.g. s3.conf), as in "
                  "the source's spec.backups.pgbackrest.configuration.",
    )
    postgres_version = forms.TypedChoiceField(
        coerce=int, label="PostgreSQL major version of the backups", initial=16,
        choices=[(v, str(v)) for v in range(18, 10, -1)],
    )
    global_options = forms.CharField(
        required=False, label="Other repo settings", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One key=value per line, e.g. repo1-s3-uri-style=path.",
    )
    backups_to_cloud = forms.TypedChoiceField(
        coerce=lambda v: v == "cloud", widget=forms.RadioSelect, initial="volume",
        label="Where the new cluster keeps its own backups",
        choices=[("volume", "A volume of its own"),
                 ("cloud", "The same storage and credentials, at its own path")],
    )

    def __init__(self, *args: Any, namespaces: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ns = self.fields["namespace"]
        assert isinstance(ns, forms.ChoiceField)
        ns.choices = [(n, n) for n in namespaces]
        ns.error_messages["invalid_choice"] = "Pick a namespace the console manages."

    def clean_global_options(self) -> tuple[tuple[str, str], ...]:
        text = self.cleaned_data.get("global_options", "")
        # Before the shape check: its message would quote the line, and the line the secret.
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        for n, line in enumerate(lines, start=1):
            key = line.split("=", 1)[0].strip()
            if is_credential(key):
                raise forms.ValidationError(GLOBAL_LINE_CREDENTIAL.format(n=n, key=key[:80]))
        return key_value_lines(text, GLOBAL_LINE_RE, GLOBAL_LINE_INVALID)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("storage") == "s3":
            for field in ("endpoint", "region"):
                if not data.get(field):
                    self.add_error(field, "S3 needs an endpoint and a region.")
        return data

    @staticmethod
    def initial_from(stored: dict[str, Any]) -> dict[str, Any]:
        return {**stored, "global_options": "\n".join(
                    f"{k}={v}" for k, v in stored.get("global_options") or ()),
                "backups_to_cloud": "cloud" if stored.get("backups_to_cloud") else "volume"}


CPU_RE = r"^[0-9]+(\.[0-9]+)?m?$"


MEMORY_RE = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)?$"


TOLERATION_RE = (
    r"^[A-Za-z0-9][-A-Za-z0-9_./]{0,252}(=[-A-Za-z0-9_.]{0,63})?"
    r":(NoSchedule|PreferNoSchedule|NoExecute)$"
)


LABEL_LINE_RE = re.compile(r"^[A-Za-z0-9][-A-Za-z0-9_./]{0,252}=[-A-Za-z0-9_.]{0,63}$")


CPU_INVALID = "A CPU amount like 500m or 2."


MEMORY_INVALID = "A memory size like 512Mi or 2Gi."


TOLERATION_INVALID = "A taint like dedicated=restore:NoSchedule or gpu:NoExecute."


NODE_LABELS_INVALID = "Line {n} is not a key=value label: {line}"


class TargetForm(forms.Form):
    name = forms.CharField(max_length=63, label="New cluster name",
                           widget=forms.TextInput(attrs={"autocomplete": "off"}))
    namespace = forms.CharField(max_length=63, label="Namespace")
    storage = forms.RegexField(
        regex=r"^[0-9]+(\.[0-9]+)?(Mi|Gi|Ti)$", initial="1Gi", label="Storage size",
        max_length=16,
        error_messages={"invalid": "A size like 10Gi, 500Mi or 1Ti."},
    )
    process_max = forms.IntegerField(required=False, min_value=1, label="Parallel processes")
    db_include = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        label="Restore only these databases (--db-include)",
    )

    # Kubernetes only: how big the restore Job is and where it runs.
    cpu_request = forms.RegexField(regex=CPU_RE, required=False, label="CPU request",
                                   error_messages={"invalid": CPU_INVALID})
    cpu_limit = forms.RegexField(regex=CPU_RE, required=False, label="CPU limit",
                                 error_messages={"invalid": CPU_INVALID})
    memory_request = forms.RegexField(regex=MEMORY_RE, required=False, label="Memory request",
                                      error_messages={"invalid": MEMORY_INVALID})
    memory_limit = forms.RegexField(regex=MEMORY_RE, required=False, label="Memory limit",
                                    error_messages={"invalid": MEMORY_INVALID})
    node_labels = forms.CharField(
        required=False, label="Run on nodes labelled", widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One key=value per line; the restore Job runs only on nodes with all of them.",
    )
    toleration = forms.RegexField(
        regex=TOLERATION_RE, required=False, label="Tolerate the taint",
        help_text="key=value:Effect or key:Effect (NoSchedule, PreferNoSchedule, NoExecute).",
        error_messages={"invalid": TOLERATION_INVALID},
    )

    KUBERNETES_FIELDS = ("cpu_request", "cpu_limit", "memory_request", "memory_limit",
                         "node_labels", "toleration")

    def __init__(self, *args: Any, databases: list[str] | None, namespace_fixed: str | None,
                 kubernetes: bool = False, process_max_limit: int = PROCESS_MAX_LIMIT,
                 typed_databases: bool = False, **kwargs: Any) -> None:
        """`typed_databases`: the backup set's databases are unknown (a cloud repo)."""
        super().__init__(*args, **kwargs)
        if typed_databases:
            self.fields["db_include"] = forms.CharField(
                required=False, max_length=2000, label=self.fields["db_include"].label,
                help_text="Database names separated by spaces; empty restores everything.",
            )
        if not kubernetes:
            for name in self.KUBERNETES_FIELDS:
                del self.fields[name]
        # The platform bounds parallelism (cores on this host, a pod's CPU limit on Kubernetes).
        pm = self.fields["process_max"]
        pm.validators.append(MaxValueValidator(process_max_limit))
        pm.widget.attrs["max"] = str(process_max_limit)
        pm.help_text = f"pgBackRest --process-max, 1 to {process_max_limit}; empty for its default."
        db = self.fields["db_include"]
        if isinstance(db, forms.MultipleChoiceField):
            db.choices = [(n, n) for n in databases or []]
            db.error_messages["invalid_choice"] = (
                "%(value)s is not a database of the backup set the restore starts from."
            )
        if namespace_fixed is not None:
            ns = self.fields["namespace"]
            ns.initial = namespace_fixed
            ns.disabled = True

    def clean_db_include(self) -> tuple[str, ...]:
        value = self.cleaned_data.get("db_include") or ()
        if isinstance(value, str):
            return tuple(dict.fromkeys(value.replace(",", " ").split()))
        return tuple(value)

    def clean_node_labels(self) -> tuple[tuple[str, str], ...]:
        return key_value_lines(self.cleaned_data.get("node_labels", ""), LABEL_LINE_RE,
                               NODE_LABELS_INVALID)

    def restore_job(self) -> dict[str, Any]:
        """The Kubernetes scheduling answers, as the draft stores them."""
        d = self.cleaned_data
        if "cpu_request" not in d:
            return {}
        return {
            "requests": [[k, d[f"{k}_request"]] for k in ("cpu", "memory") if d[f"{k}_request"]],
            "limits": [[k, d[f"{k}_limit"]] for k in ("cpu", "memory") if d[f"{k}_limit"]],
            "node_labels": [list(p) for p in d["node_labels"]],
            "toleration": d["toleration"],
        }
