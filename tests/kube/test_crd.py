"""The CRD-backed validator, pruner and defaulter against the seed manifests and bad ones."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from tests.kube.apiserver import crd

SEEDS = sorted((Path(__file__).resolve().parents[3] / "shared/pgo/seed-manifests").glob("*.yaml"))


def seed(name: str) -> dict[str, Any]:
    return yaml.safe_load(next(p for p in SEEDS if p.name.startswith(name)).read_text())


def test_there_are_six_seed_manifests() -> None:
    assert [p.name[:2] for p in SEEDS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", SEEDS, ids=lambda p: p.name)
def test_every_seed_manifest_is_valid(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    assert crd.validate(manifest) == []
    assert crd.unknown_fields(manifest) == []
    assert crd.prune_unknown(manifest) == manifest


def test_the_schema_is_loaded_once_and_is_v1beta1() -> None:
    assert crd.schema() is crd.schema()
    assert crd.crd_path() == crd.DEFAULT_CRD_PATH
    assert crd.DEFAULT_CRD_PATH.is_file()
    spec = crd.schema()["properties"]["spec"]
    assert spec["required"] == ["instances", "postgresVersion"]
    assert "description" not in spec


TINY_CRD = {
    "spec": {
        "versions": [
            {"name": "v1", "schema": {"openAPIV3Schema": {"type": "object"}}},
            {
                "name": "v1beta1",
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer"}},
                            }
                        },
                    }
                },
            },
        ]
    }
}


def test_the_crd_path_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY_CRD))
    monkeypatch.setenv(crd.CRD_ENV, str(path))
    manifest = {"apiVersion": crd.API_VERSION, "kind": crd.KIND, "metadata": {"name": "a"}}
    assert crd.validate({**manifest, "spec": {"size": 1}}) == []
    assert crd.validate({**manifest, "spec": {}}) == ["spec: 'size' is a required property"]
    assert crd.unknown_fields({**manifest, "spec": {"size": 1, "x": 2}}) == ["spec.x"]


def test_a_missing_crd_or_version_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(crd.CRD_ENV, str(tmp_path / "absent.yaml"))
    with pytest.raises(FileNotFoundError, match=crd.CRD_ENV):
        crd.schema()
    other = tmp_path / "v1-only.yaml"
    other.write_text(yaml.safe_dump({"spec": {"versions": TINY_CRD["spec"]["versions"][:1]}}))
    monkeypatch.setenv(crd.CRD_ENV, str(other))
    with pytest.raises(LookupError, match="v1beta1"):
        crd.schema()


# -- rejections ----------------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting a dotted path (list indexes as numbers); value None deletes."""

    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        for part in parents:
            doc = doc.setdefault(part, {}) if isinstance(part, str) else doc[part]
        if value is None:
            del doc[last]
        elif isinstance(doc, list) and last == len(doc):
            doc.append(value)
        else:
            doc[last] = value

    return mutate


PITR = "02"
S3_CLONE = "05"
CLAIM = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
VOLUME_REPO = {"name": "repo1", "volume": {"volumeClaimSpec": CLAIM}}
STORAGE = "spec.instances.0.dataVolumeClaimSpec.resources.requests.storage"
PG_SOURCE = "spec.dataSource.postgresCluster"
QUANTITY = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"  # noqa: E501
REJECTED = [
    # (seed, mutation, an error expected among validate()'s; None: valid)
    (PITR, _set("spec.postgresVersion", "16"),
     "spec.postgresVersion: '16' is not of type 'integer'"),
    (PITR, _set("spec.postgresVersion", 19),
     "spec.postgresVersion: 19 is greater than the maximum of 18"),
    (PITR, _set("spec.imagePullPolicy", "Sometimes"),
     "spec.imagePullPolicy: 'Sometimes' is not one of ['Always', 'Never', 'IfNotPresent']"),
    (PITR, _set(f"{PG_SOURCE}.repoName", "repo5"),
     f"{PG_SOURCE}.repoName: 'repo5' does not match '^repo[1-4]'"),
    (PITR, _set(f"{PG_SOURCE}.repoName", "repo1x"), None),  # §1.2: the CRD's pattern has no $
    (PITR, _set(f"{PG_SOURCE}.repoName", None), f"{PG_SOURCE}: 'repoName' is a required property"),
    (PITR, _set("spec.instances", []), "spec.instances: [] should be non-empty"),
    (PITR, _set("spec.instances.0.replicas", 0),
     "spec.instances[0].replicas: 0 is less than the minimum of 1"),
    (PITR, _set("spec.instances.0.dataVolumeClaimSpec.accessModes", []),
     "spec.instances[0].dataVolumeClaimSpec: missing accessModes"),
    (PITR, _set("spec.instances.0.dataVolumeClaimSpec.resources", {}),
     "spec.instances[0].dataVolumeClaimSpec: missing storage request"),
    (PITR, _set(STORAGE, True), "spec.instances[0].dataVolumeClaimSpec.resources.requests.storage: "
     "True is not valid under any of the given schemas"),
    (PITR, _set(STORAGE, "1 Gi"),
     f"spec.instances[0].dataVolumeClaimSpec.resources.requests.storage: '1 Gi' does not match "
     f"{QUANTITY!r}"),
    (PITR, _set("spec.instances.1", {"dataVolumeClaimSpec": CLAIM}),
     "spec.instances[1]: Duplicate value: name=''"),
    (PITR, _set("spec.backups.pgbackrest.repos.1", VOLUME_REPO),
     "spec.backups.pgbackrest.repos[1]: Duplicate value: name='repo1'"),
    (PITR, _set("spec.backups.pgbackrest.repos.0.volume", None), None),  # §1.2: not enforced
    (PITR, _set("spec.standby", {"port": 80}),
     "spec.standby.port: 80 is less than the minimum of 1024"),
    (PITR, _set("spec.config", {"parameters": {"recovery_target_time": "x"}}),
     "spec.config.parameters: failed rule: !has(self.recovery_target) && "
     '!self.exists(k, k.startsWith("recovery_target_"))'),
    (PITR, _set("spec.config", {"parameters": {"archive_command": "x"}}),
     "spec.config.parameters: failed rule: !has(self.archive_mode) && "
     "!has(self.archive_command) && !has(self.restore_command)"),
    (PITR, _set("spec.config", {"parameters": {"hot_standby": "off"}}),
     "spec.config.parameters: hot_standby is always enabled"),
    (PITR, _set("spec.config", {"parameters": {"ssl_groups": "x"}}),
     "spec: The ssl_groups parameter is only available in pg18 and greater"),
    (PITR, _set("spec.users", [{"name": "a", "options": "PASSWORD 'x'"}]),
     "spec.users[0].options: cannot assign password"),
    (PITR, _set("spec.fooBar", 1), "spec.fooBar: unknown field (the API server would drop it)"),
    (PITR, _set("apiVersion", "postgres-operator.crunchydata.com/v1"), crd.BAD_API_VERSION),
    (PITR, _set("kind", "PGCluster"), crd.BAD_KIND),
    (PITR, _set("metadata.name", "e" * 64), crd.BAD_NAME.format(name="e" * 64)),
    (PITR, _set("metadata.name", "e" * 63), None),
    (PITR, _set("metadata.name", "Elephant"), crd.BAD_NAME.format(name="Elephant")),
    (PITR, _set("metadata.name", "1elephant"), crd.BAD_NAME.format(name="1elephant")),
    (PITR, _set("metadata.namespace", "-x"), crd.BAD_NAMESPACE.format(name="-x")),
    (PITR, _set("metadata.annotations", {"a/b/c": "x"}),
     crd.BAD_META_KEY.format(field="annotations", key="a/b/c")),
    (PITR, _set("metadata.annotations", {"a": 1}), crd.BAD_META_MAP.format(field="annotations")),
    (PITR, _set("metadata.labels", {"a": "x y"}), crd.BAD_LABEL_VALUE.format(key="a")),
    (PITR, _set("metadata", None), crd.NO_METADATA),
    (S3_CLONE, _set("spec.dataSource.pgbackrest.repo", VOLUME_REPO), "spec.dataSource.pgbackrest: "
     "Only S3, GCS or Azure repos can be used as a pgBackRest data source."),
    (S3_CLONE, _set("spec.dataSource.pgbackrest.repo.s3.region", None),
     "spec.dataSource.pgbackrest.repo.s3: 'region' is a required property"),
    (S3_CLONE, _set("spec.dataSource.pgbackrest.global.repo1-path", 1),
     "spec.dataSource.pgbackrest.global.repo1-path: 1 is not of type 'string'"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "mutate", "expected"), REJECTED)
def test_invalid_manifests_are_rejected_with_a_clear_error(
    name: str, mutate: Callable[[dict[str, Any]], None], expected: str | None
) -> None:
    manifest = seed(name)
    mutate(manifest)
    errors = crd.validate(manifest)
    if expected is None:
        assert errors == []
    else:
        assert expected in errors, errors


def test_unknown_fields_are_only_an_error_when_strict() -> None:
    manifest = seed(PITR)
    manifest["spec"]["backups"]["pgbackrest"]["repos"][0]["bogus"] = 1
    error = "spec.backups.pgbackrest.repos[0].bogus: unknown field (the API server would drop it)"
    assert crd.validate(manifest) == [error]
    assert crd.validate(manifest, strict=False) == []


def test_non_objects_are_rejected() -> None:
    assert crd.validate([]) == [crd.NOT_AN_OBJECT]
    assert crd.validate("x") == [crd.NOT_AN_OBJECT]


def test_int_or_string_quantities_take_integers_and_strings() -> None:
    manifest = seed(PITR)
    manifest["spec"]["instances"][0]["dataVolumeClaimSpec"]["resources"]["requests"] = {
        "storage": 1073741824
    }
    manifest["spec"]["config"] = {"parameters": {"max_connections": 200, "work_mem": "4MB"}}
    assert crd.validate(manifest) == []


def test_an_ssl_group_is_fine_on_postgres_18() -> None:
    manifest = seed(PITR)
    manifest["spec"].update(postgresVersion=18, config={"parameters": {"ssl_groups": "X25519"}})
    assert crd.validate(manifest) == []


# -- pruning and defaulting ----------------------------------------------------------------


def test_prune_unknown_drops_what_the_schema_does_not_know() -> None:
    manifest = seed(S3_CLONE)
    manifest["metadata"]["annotations"] = {"x/y": "z"}
    manifest["spec"]["bogus"] = {"a": 1}
    manifest["spec"]["dataSource"]["pgbackrest"]["repo"]["s3"]["uriStyle"] = "path"
    manifest["spec"]["patroni"] = {"dynamicConfiguration": {"anything": {"goes": [1, 2]}}}
    manifest["spec"]["config"] = {"parameters": {"any_parameter": "1"}}
    manifest["status"] = {"bogus": 1, "observedGeneration": 3}
    before = copy.deepcopy(manifest)

    pruned = crd.prune_unknown(manifest)

    assert manifest == before  # not mutated
    assert crd.unknown_fields(manifest) == [
        "spec.dataSource.pgbackrest.repo.s3.uriStyle",
        "spec.bogus",
        "status.bogus",
    ]
    assert "bogus" not in pruned["spec"]
    assert "uriStyle" not in pruned["spec"]["dataSource"]["pgbackrest"]["repo"]["s3"]
    assert pruned["spec"]["patroni"] == manifest["spec"]["patroni"]  # preserve-unknown-fields
    assert pruned["spec"]["config"] == manifest["spec"]["config"]  # additionalProperties
    assert pruned["metadata"] == manifest["metadata"]  # ObjectMeta is not the schema's
    assert pruned["status"] == {"observedGeneration": 3}
    assert crd.validate(pruned) == []


def test_defaults_are_applied_as_the_api_server_does() -> None:
    manifest = seed(S3_CLONE)
    del manifest["spec"]["dataSource"]["pgbackrest"]["stanza"]  # required, but defaulted
    manifest["spec"]["standby"] = {"repoName": "repo1"}
    manifest["spec"]["backups"]["pgbackrest"]["restore"] = {"repoName": "repo1"}

    defaulted = crd.apply_defaults(manifest)

    assert defaulted["spec"]["dataSource"]["pgbackrest"]["stanza"] == "db"
    assert defaulted["spec"]["standby"]["enabled"] is True  # hazard H4
    assert defaulted["spec"]["backups"]["pgbackrest"]["restore"]["enabled"] is False
    assert defaulted["spec"]["instances"][0]["name"] == ""
    assert defaulted["spec"]["instances"][0]["replicas"] == 1
    assert "stanza" not in manifest["spec"]["dataSource"]["pgbackrest"]  # not mutated
    assert crd.validate(manifest) == []


# -- merge patches (RFC 7386, appendix A) --------------------------------------------------

RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386)
def test_merge_patch_follows_rfc_7386(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy(target)
    assert crd.merge_patch(target, patch) == expected
    assert target == before


# -- the OpenAPI to JSON schema conversion -------------------------------------------------


def test_openapi_extensions_are_converted() -> None:
    schema = crd.openapi_to_jsonschema(
        {
            "type": "object",
            "description": "dropped",
            "properties": {
                "n": {"type": "string", "nullable": True, "enum": ["a"]},
                "q": {"x-kubernetes-int-or-string": True},
                "m": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
                "l": {"type": "array", "items": {"type": "integer", "nullable": True}},
            },
        }
    )
    assert "description" not in schema
    validator = Draft7Validator(schema)
    assert validator.is_valid({"n": None, "q": 1, "m": 1, "l": [None, 2]})
    assert validator.is_valid({"n": "a", "q": "50%"})
    for bad in ({"n": "b"}, {"q": 1.5}, {"q": None}, {"m": 0}, {"l": ["x"]}):
        assert not validator.is_valid(bad), bad


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^[[:print:]]+$", "host all all all md5", True),
        ("^[[:print:]]+$", "tab\there", False),
        ("^[-a-z0-9]+$", "abc", True),
        ("^[-a-z0-9]+$", "abc\n", False),  # RE2's $ is the end of the text
        ("^repo[1-4]", "repo1x", True),  # unanchored in the CRD (§1.2)
        (r"^[a-z]+\$$", "ab$", True),
    ],
)
def test_go_patterns_keep_their_go_meaning(pattern: str, text: str, matches: bool) -> None:
    regex = crd.go_regex(pattern)
    assert regex is not None
    assert (regex.search(text) is not None) is matches


def test_unicode_class_patterns_are_not_checked() -> None:
    assert crd.go_regex(r"^[^\pZ\pC\pS]+$") is None
    manifest = seed(PITR)
    manifest["spec"]["instrumentation"] = {
        "metrics": {"customQueries": {"add": [{"name": "a b", "queries": {"name": "q"}}]}}
    }
    assert not any("customQueries" in e and "match" in e for e in crd.validate(manifest))


def test_a_trailing_newline_does_not_pass_a_pattern() -> None:
    manifest = seed(PITR)
    manifest["spec"]["dataSource"]["postgresCluster"]["repoName"] = "repo1"
    manifest["spec"]["instances"][0]["name"] = "a\n"
    assert (
        "spec.instances[0].name: 'a\\n' does not match '^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$'"
        in crd.validate(manifest)
    )


# -- CEL rules -----------------------------------------------------------------------------


def test_all_cel_rules_but_four_duration_rules_are_evaluated() -> None:
    rules = crd.cel_rules()
    assert len(rules) == 51  # PGO-REFERENCE §14
    skipped = crd.unevaluated_rules()
    assert len(skipped) == 4
    assert all(path.startswith("spec.instrumentation.") for path, _ in skipped)
    assert all("duration(" in rule for _, rule in skipped)
    assert set(crd._CEL) <= {rule for _, rule in rules}  # no stale table entries


def test_the_rules_that_matter_for_dr_are_evaluated() -> None:
    dr = re.compile(r"spec\.(dataSource|backups|instances|config)\b")
    rules = [(path, rule) for path, rule in crd.cel_rules() if dr.match(path)]
    assert len(rules) == 31  # 12 volume claim rules, the data source rule, 18 parameter rules
    assert not [(path, rule) for path, rule in crd.unevaluated_rules() if dr.match(path)]


@pytest.mark.parametrize(
    ("rules", "ok", "bad"),
    [
        (
            "spec.authentication.rules",
            [{"hba": "host all all all md5"}, {"connection": "host", "method": "md5"}],
            [{"hba": "include x"}, {"connection": "host", "method": "trust"}, {"method": "x"}],
        ),
        (
            "spec.authentication.rules",
            [{"connection": "host", "method": "ldap", "options": {"ldapprefix": "a"}}],
            [
                {"connection": "host", "method": "ldap", "options": {"ldapport": "1"}},
                {
                    "connection": "h",
                    "method": "ldap",
                    "options": {"ldapprefix": "a", "ldapbasedn": "b"},
                },
                {"connection": "h", "method": "radius", "options": {"radiusservers": "a"}},
                {"hba": "host all all all md5", "method": "md5"},
            ],
        ),
    ],
)
def test_the_crd_accepts_good_authentication_rules_and_refuses_bad_ones(
    rules: str, ok: list[Any], bad: list[Any]
) -> None:
    for value in ok:
        manifest = seed(PITR)
        manifest["spec"]["authentication"] = {"rules": [value]}
        assert crd.validate(manifest) == [], value
    for value in bad:
        manifest = seed(PITR)
        manifest["spec"]["authentication"] = {"rules": [value]}
        assert any(e.startswith(f"{rules}[0]") for e in crd.validate(manifest)), value


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(["spec", "spec.backups", "spec.dataSource", "spec.instances", "metadata"]), JSON
)
def test_validate_never_crashes_and_always_explains(path: str, value: Any) -> None:
    manifest = seed(S3_CLONE)
    _set(path, value if value is not None else 0)(manifest)
    errors = crd.validate(manifest)
    assert isinstance(errors, list)
    assert all(isinstance(e, str) and ": " in e for e in errors)
    json.dumps(crd.prune_unknown(manifest))
