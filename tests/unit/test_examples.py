"""The example manifests must keep working as written: their facts match their media."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from mediaplane.core import keys, names
from mediaplane.devcluster import demo

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CRD = Path(__file__).resolve().parents[2] / "crds" / "mediaassets.media.mediaplane.io.yaml"


@pytest.mark.parametrize("manifest", demo.EXAMPLES)
def test_example_declares_the_real_bytes(manifest: str) -> None:
    body = yaml.safe_load((EXAMPLES / manifest).read_text())
    data = (EXAMPLES / "media" / demo.MEDIA[manifest]).read_bytes()
    spec = body["spec"]
    assert spec["sha256"] == hashlib.sha256(data).hexdigest()
    assert spec["sizeBytes"] == len(data)
    asset_id = names.asset_id_from_name(body["metadata"]["name"])
    namespace = body["metadata"]["namespace"]
    assert spec["source"]["key"] == keys.source_key(namespace, asset_id)
    schema = yaml.safe_load(CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    key_pattern = schema["properties"]["spec"]["properties"]["source"]["properties"]["key"]
    assert re.match(key_pattern["pattern"], spec["source"]["key"])


def test_demo_finds_the_examples() -> None:
    assert demo.examples_dir() == EXAMPLES
