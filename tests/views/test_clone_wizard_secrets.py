"""The cloud-repo source never takes a credential: any repo setting named like one is
refused next to its field, with where it belongs, and goes nowhere (draft, manifest, page)."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from restores.forms.clones import GLOBAL_LINE_CREDENTIAL
from restores.models import AuditEntry, CloneDraft, Operation
from restores.platforms import manifests
from restores.platforms.base import PermanentError
from restores.platforms.secrets import is_credential, scrub
from restores.services import clones

pytestmark = pytest.mark.django_db

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
CREDENTIAL_OPTIONS = [
    "repo1-s3-key", "repo1-s3-key-secret", "repo1-s3-token", "repo1-cipher-pass",
    "repo1-gcs-key", "repo1-azure-key", "repo1-s3-sse-customer-key", "repo1-host-password",
    "repo1-azure-credentials",
]
HARMLESS = ["repo1-s3-uri-style", "repo1-s3-key-type", "repo1-azure-key-type",
            "repo1-s3-kms-key-id", "repo1-retention-full", "repo1-storage-verify-tls"]


def cloud_post(options: str) -> dict[str, str]:
    return {"origin": "cloud", "namespace": "db", "storage": "s3", "bucket": "my-bucket",
            "endpoint": "s3.example.org", "region": "ca-central-1",
            "path": "/pgbackrest/repo1", "repo_name": "repo1", "stanza": "db",
            "configuration_secret": "pgo-s3-creds", "postgres_version": "16",
            "backups_to_cloud": "volume", "global_options": options}


@pytest.fixture
def cloud_enabled(settings) -> None:  # type: ignore[no-untyped-def]
    settings.DR_PLATFORMS = ["local", "kubernetes"]
    settings.DR_KUBE_NAMESPACES = ["db"]


@pytest.mark.parametrize("option", CREDENTIAL_OPTIONS)
def test_a_credential_in_the_repo_settings_is_refused_next_to_the_field(
    client: Client, cloud_enabled: None, option: str, hx: dict[str, str]
) -> None:
    draft = clones.draft_create(user=None)
    url = f"/clone/{draft.pk}/source/"
    r = client.post(url, cloud_post(f"repo1-s3-uri-style=path\n{option}={SECRET}"), **hx)
    assert r.status_code == 422
    page = r.content.decode()
    assert GLOBAL_LINE_CREDENTIAL.format(n=2, key=option).split(":")[0] in page
    assert 'id="error-global_options"' in page
    assert SECRET not in page.split('name="global_options"')[0]  # not echoed in a message
    draft.refresh_from_db()
    assert draft.cloud == {} and draft.reached == CloneDraft.Step.SOURCE
    stored = json.dumps([list(CloneDraft.objects.values()), list(Operation.objects.values()),
                         list(AuditEntry.objects.values())], default=str)
    assert SECRET not in stored


@pytest.mark.parametrize("option", CREDENTIAL_OPTIONS)
def test_the_manifest_builder_refuses_a_credential_without_quoting_it(option: str) -> None:
    source = manifests.CloudSource(
        repo=manifests.RepoSpec("repo1", s3=manifests.S3("my-bucket", "s3.example.org",
                                                          "ca-central-1")),
        global_options=((option, SECRET),))
    spec = manifests.ClusterSpec(name="x", namespace="db", postgres_version=16,
                                 repos=(manifests.RepoSpec("repo1", volume_size="1Gi"),))
    with pytest.raises(PermanentError) as refused:
        manifests.clone_manifest(spec, manifests.CloneSource(cloud=source))
    assert refused.value.message == manifests.GLOBAL_CREDENTIAL.format(key=option)
    assert SECRET not in refused.value.message


@pytest.mark.parametrize("option", HARMLESS)
def test_settings_that_only_say_how_to_authenticate_are_kept(option: str) -> None:
    assert not is_credential(option)


def test_scrub_removes_credentials_wherever_they_sit() -> None:
    data = {"global_options": [["repo1-s3-key", SECRET], ["repo1-s3-uri-style", "path"]],
            "nested": {"repo1-cipher-pass": SECRET, "ok": [1, 2]}}
    assert SECRET not in json.dumps(scrub(data))
    assert scrub(data)["global_options"][1] == ["repo1-s3-uri-style", "path"]
