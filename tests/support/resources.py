"""Typed resources in the states tests need, built the one way the code builds them."""

from __future__ import annotations

from typing import Any

from mediaplane.core import keys
from mediaplane.core.resources import MediaAssetStatus, VariantStatus


def rendition(prefix: str, name: str, type_: str, **fields: Any) -> dict[str, Any]:
    """A done rendition's status entry, its files under the asset prefix."""
    return {"name": name, "type": type_, "state": "succeeded",
            "playlist": f"{prefix}variants/{name}/media_0.m3u8",
            "mpd": f"{prefix}variants/{name}/manifest.mpd", **fields}


def playable_status(tenant: str, asset_id: str, *extra: VariantStatus,
                    duration_seconds: float = 8.0) -> MediaAssetStatus:
    """What the operator writes once a video's 240p rung and audio are done."""
    prefix = keys.asset_prefix(tenant, asset_id)
    status = MediaAssetStatus.model_validate({
        "phase": "ready", "playable": True,
        "probe": {"detectedMime": "video/mp4", "formatName": "mov",
                  "durationSeconds": duration_seconds},
        "manifests": {"hls": prefix + "master.m3u8", "dash": prefix + "manifest.mpd",
                      "variants": ["240p", "audio"]},
        "variants": [
            rendition(prefix, "240p", "video", bandwidth=400_000, width=426, height=240,
                      codecs="avc1.64000d"),
            rendition(prefix, "audio", "audio", bandwidth=100_000, codecs="mp4a.40.2")]})
    status.variants.extend(extra)
    return status
