"""Every manifest in the models directory (fetched, derived by `models fetch`, built by
`switchyard-convert build`) validates against core/schema/manifest.schema.json."""

from __future__ import annotations

import json

import jsonschema
import pytest

from conftest import REPO_ROOT
from test_artifact_integrity import models_dir

SCHEMA = json.loads((REPO_ROOT / "core/schema/manifest.schema.json").read_text())


def manifests() -> list:
    return sorted(models_dir().glob("*/manifest.json"))


def test_schema_is_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", manifests(), ids=lambda p: p.parent.name)
def test_manifest_validates(path) -> None:
    jsonschema.validate(json.loads(path.read_text()), SCHEMA, cls=jsonschema.Draft202012Validator)


def test_bad_manifests_are_refused_by_the_schema() -> None:
    good = json.loads(manifests()[0].read_text())
    bad_sha = json.loads(json.dumps(good))
    bad_sha["artifacts"][0]["sha256"] = "XYZ"
    unknown = dict(good, surprise=1)
    for bad in (bad_sha, unknown):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, SCHEMA, cls=jsonschema.Draft202012Validator)
