"""The CRDs in crds/ and the models in core.resources describe the same fields.

Both schemas are flattened to `path -> type` (and enum values), then compared in both
directions: a field the code writes but the CRD lacks would be pruned by the API server
without a word; a field the CRD declares but the models lack would be dropped on read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from mediaplane.core.resources import (
    MediaAssetSpec,
    MediaAssetStatus,
    TranscodeJobSpec,
    TranscodeJobStatus,
    WebhookEndpointSpec,
    WebhookEndpointStatus,
)

CRDS = Path(__file__).resolve().parents[2] / "crds"
Flat = dict[str, tuple[str, tuple[str, ...]]]  # path -> (type, enum values)


def crd_schema(plural: str) -> dict[str, Any]:
    document = yaml.safe_load((CRDS / f"{plural}.media.mediaplane.io.yaml").read_text())
    schema: dict[str, Any] = document["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def flatten_crd(schema: dict[str, Any], path: str, out: Flat) -> Flat:
    kind = schema.get("type", "object")
    out[path] = (kind, tuple(sorted(str(v) for v in schema.get("enum", ()))))
    if kind == "object":
        for name, child in (schema.get("properties") or {}).items():
            flatten_crd(child, f"{path}.{name}", out)
        if isinstance(schema.get("additionalProperties"), dict):  # a map: its values
            flatten_crd(schema["additionalProperties"], f"{path}{{}}", out)
    elif kind == "array":
        flatten_crd(schema["items"], f"{path}[]", out)
    return out


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The schema without references and without the `null` half of an Optional."""
    if "$ref" in schema:
        return _resolve(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        assert len(options) == 1, f"a union the CRD cannot express: {schema}"
        return _resolve(options[0], defs)
    return schema


def flatten_model(schema: dict[str, Any], defs: dict[str, Any], path: str, out: Flat) -> Flat:
    schema = _resolve(schema, defs)
    kind = schema.get("type", "object")
    enum = schema.get("enum") or ([schema["const"]] if "const" in schema else [])
    out[path] = (kind, tuple(sorted(str(v) for v in enum)) if len(enum) > 1 else ())
    if kind == "object" and "properties" in schema:
        for name, child in schema["properties"].items():
            flatten_model(child, defs, f"{path}.{name}", out)
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        flatten_model(schema["additionalProperties"], defs, f"{path}{{}}", out)
    elif kind == "array":
        flatten_model(schema["items"], defs, f"{path}[]", out)
    return out


def model_flat(model: type[BaseModel], path: str) -> Flat:
    schema = model.model_json_schema(by_alias=True, mode="serialization")
    return flatten_model(schema, schema.get("$defs", {}), path, {})


def crd_flat(plural: str, part: str) -> Flat:
    return flatten_crd(crd_schema(plural)["properties"][part], part, {})


CASES = [
    ("mediaassets", "spec", MediaAssetSpec),
    ("mediaassets", "status", MediaAssetStatus),
    ("transcodejobs", "spec", TranscodeJobSpec),
    ("transcodejobs", "status", TranscodeJobStatus),
    ("webhookendpoints", "spec", WebhookEndpointSpec),
    ("webhookendpoints", "status", WebhookEndpointStatus),
]


@pytest.mark.parametrize(("plural", "part", "model"), CASES,
                         ids=[f"{p}.{part}" for p, part, _ in CASES])
def test_crd_and_model_have_the_same_fields_types_and_enums(plural: str, part: str,
                                                          model: type[BaseModel]) -> None:
    crd, code = crd_flat(plural, part), model_flat(model, part)
    assert sorted(set(code) - set(crd)) == [], "written by the code, pruned by the API server"
    assert sorted(set(crd) - set(code)) == [], "declared by the CRD, unknown to the models"
    for path in sorted(crd):
        crd_type, crd_enum = crd[path]
        code_type, code_enum = code[path]
        assert crd_type == code_type, f"{path}: CRD {crd_type}, model {code_type}"
        assert crd_enum == code_enum, f"{path}: CRD enum {crd_enum}, model enum {code_enum}"


def test_the_comparison_sees_a_missing_field() -> None:
    """The check above can fail: drop one CRD field and it no longer matches."""
    schema = crd_schema("mediaassets")["properties"]["status"]
    del schema["properties"]["variantSummary"]
    crd = flatten_crd(schema, "status", {})
    assert set(model_flat(MediaAssetStatus, "status")) - set(crd) == {"status.variantSummary"}
