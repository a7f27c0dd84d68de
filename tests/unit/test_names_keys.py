"""Ids, names and key prefixes: the pieces tenant isolation and idempotence rest on."""

from __future__ import annotations

import hashlib

import pytest

from mediaplane.core import keys, names


def test_asset_id_and_name_round_trip() -> None:
    asset_id = names.new_asset_id()
    assert names.ASSET_ID_PATTERN.match(asset_id)
    name = names.name_from_asset_id(asset_id)
    assert name == "mda-" + asset_id[4:]
    assert names.asset_id_from_name(name) == asset_id


def test_ids_from_digest_are_deterministic_and_valid() -> None:
    digest = hashlib.sha256(b"tenant-a:" + b"0" * 64).digest()
    first, second = names.asset_id_from_digest(digest), names.asset_id_from_digest(digest)
    assert first == second
    assert names.ASSET_ID_PATTERN.match(first)
    assert first != names.asset_id_from_digest(hashlib.sha256(b"tenant-b").digest())


@pytest.mark.parametrize("bad", ["mda_short", "MDA_" + "0" * 26, "mda_" + "i" * 26, "x" * 30])
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="not an asset id"):
        names.name_from_asset_id(bad)


def test_child_names_fit_in_a_label_value() -> None:
    name = names.name_from_asset_id(names.new_asset_id())
    assert len(names.child_name(name, "audio")) <= 63
    with pytest.raises(ValueError, match="too long"):
        names.child_name(name, "x" * 40)


def test_keys_stay_under_the_tenant_prefix() -> None:
    asset_id = names.new_asset_id()
    prefix = keys.asset_prefix("acme", asset_id)
    assert prefix.startswith(keys.tenant_prefix("acme"))
    assert keys.variant_prefix("acme", asset_id, "360p").startswith(prefix)
    assert keys.is_under(keys.source_key("acme", asset_id), prefix)
    assert not keys.is_under(prefix + "../other/x", prefix)
    assert not keys.is_under(prefix, prefix)
    assert not keys.is_under(keys.asset_prefix("other", asset_id) + "source", prefix)
