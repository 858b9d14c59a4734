"""Validators for the component schemas of OpenAI's official OpenAPI spec.

The spec (`shared/spec/openai-openapi.yaml`, next to the repository; `OPENAI_SPEC` overrides
the path) is OpenAPI 3.1, whose schemas are JSON Schema 2020-12, except that some fields still
carry OpenAPI 3.0's `nullable: true`. Loading rewrites those as
`anyOf: [<the schema without nullable>, {"type": "null"}]`, so that they accept null as the
spec means. `$ref`s (`#/components/schemas/...`) are resolved with `referencing`.

The spec is large: it is parsed once per process and the validators are cached.
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any, Iterable

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# tests/python/openapi_schema.py -> the repository's parent -> shared/spec/openai-openapi.yaml
DEFAULT_SPEC = Path(__file__).resolve().parents[3] / "shared" / "spec" / "openai-openapi.yaml"

# The URI the whole spec is registered under; every `#/...` reference in it resolves against it.
SPEC_URI = "urn:openai:openapi"


def spec_path() -> Path:
    """Where the spec is read from: `$OPENAI_SPEC`, else the default next to the repository."""
    override = os.environ.get("OPENAI_SPEC")
    return Path(override) if override else DEFAULT_SPEC


def _nullable_to_anyof(node: Any) -> Any:
    """Returns `node` with every `nullable: true` schema rewritten to also accept null."""
    if isinstance(node, list):
        return [_nullable_to_anyof(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_anyof(value) for key, value in node.items()}
    # `is True`: a property that happens to be *named* `nullable` maps to a schema (a dict).
    nullable = converted.get("nullable")
    if nullable is True or nullable is False:
        del converted["nullable"]
    if nullable is True:
        # anyOf rather than adding "null" to `type`: it also covers `$ref` and `enum` schemas,
        # whose values would otherwise still exclude null.
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.lru_cache(maxsize=None)
def load_spec() -> dict[str, Any]:
    """The parsed, `nullable`-normalised spec (parsed once)."""
    path = spec_path()
    if not path.is_file():
        raise FileNotFoundError(f"OpenAI OpenAPI spec not found at {path} (set OPENAI_SPEC)")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open("rb") as f:
        spec = yaml.load(f, Loader=loader)
    return _nullable_to_anyof(spec)


@functools.lru_cache(maxsize=None)
def _registry() -> Registry:
    resource = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    return Registry().with_resource(SPEC_URI, resource)


def component(name: str) -> dict[str, Any]:
    """The (normalised) schema `#/components/schemas/NAME`."""
    schemas = load_spec()["components"]["schemas"]
    if name not in schemas:
        raise KeyError(f"no component schema named {name!r} in {spec_path()}")
    return schemas[name]


def _validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


@functools.lru_cache(maxsize=None)
def validator(name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator for `#/components/schemas/NAME`."""
    component(name)  # a clear error for a misspelt name
    return _validator_for({"$ref": f"{SPEC_URI}#/components/schemas/{name}"})


def _absolute_refs(node: Any) -> Any:
    """Rewrites the spec-relative `#/...` references in a copied schema to absolute ones."""
    if isinstance(node, list):
        return [_absolute_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _absolute_refs(value) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        out["$ref"] = SPEC_URI + ref
    return out


@functools.lru_cache(maxsize=None)
def validator_with_nullable(name: str, paths: tuple[str, ...]) -> Draft202012Validator:
    """A validator for `#/components/schemas/NAME` in which the subschemas at `paths` (slash-
    separated keys inside the component, e.g. `properties/usage`) also accept null, and
    nothing else changes.

    For the few places where the spec's prose requires a null that its schema forgets; every
    caller must say which sentence of the spec it follows.
    """
    schema = _absolute_refs(copy.deepcopy(component(name)))
    for path in paths:
        parent, key = schema, None
        keys = path.split("/")
        for key in keys[:-1]:
            parent = parent[key]
        last = keys[-1]
        if last not in parent:
            raise KeyError(f"{name} has no subschema at {path}")
        parent[last] = {"anyOf": [parent[last], {"type": "null"}]}
    return _validator_for(schema)


def _describe(errors: Iterable[Any]) -> str:
    lines = []
    for error in sorted(errors, key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in error.absolute_path) or "<root>"
        lines.append(f"  at {where}: {error.message}")
        for sub in error.context or ():
            sub_where = "/".join(str(p) for p in sub.absolute_path) or "<root>"
            lines.append(f"      (anyOf branch) at {sub_where}: {sub.message}")
    return "\n".join(lines)


def assert_valid_with(v: Draft202012Validator, label: str, instance: Any) -> None:
    """Fails with every violation (path and message) when `instance` does not match."""
    errors = list(v.iter_errors(instance))
    if errors:
        raise AssertionError(f"response does not match {label}:\n{_describe(errors)}\n{instance!r}")


def assert_valid(name: str, instance: Any) -> None:
    """Fails with every violation when `instance` does not match `#/components/schemas/NAME`."""
    assert_valid_with(validator(name), name, instance)
