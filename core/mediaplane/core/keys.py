"""Object key layout: everything of a tenant lives under `tenants/<tenant>/`.

Workers get presigned URLs built from these prefixes, so a worker can never write
outside its own variant's prefix, and deleting an asset is one prefix delete.
"""

from __future__ import annotations

TENANTS = "tenants"


def tenant_prefix(tenant: str) -> str:
    return f"{TENANTS}/{tenant}/"


def assets_prefix(tenant: str) -> str:
    """Where a tenant's assets are: one folder per asset id below it."""
    return f"{TENANTS}/{tenant}/assets/"


def asset_prefix(tenant: str, asset_id: str) -> str:
    return f"{TENANTS}/{tenant}/assets/{asset_id}/"


def source_key(tenant: str, asset_id: str) -> str:
    return asset_prefix(tenant, asset_id) + "source"


def variant_prefix(tenant: str, asset_id: str, variant: str) -> str:
    return asset_prefix(tenant, asset_id) + f"variants/{variant}/"


def hls_master_key(tenant: str, asset_id: str) -> str:
    return asset_prefix(tenant, asset_id) + "master.m3u8"


def dash_manifest_key(tenant: str, asset_id: str) -> str:
    return asset_prefix(tenant, asset_id) + "manifest.mpd"


def is_under(key: str, prefix: str) -> bool:
    """True when `key` is a plain key below `prefix` (no traversal, no empty segments)."""
    if not key.startswith(prefix) or len(key) == len(prefix):
        return False
    parts = key[len(prefix):].split("/")
    return all(part not in ("", ".", "..") for part in parts)


def caption_key(tenant: str, asset_id: str, language: str) -> str:
    """A caption track's WebVTT file; one per language."""
    return asset_prefix(tenant, asset_id) + f"captions/{language}.vtt"


def generated_caption_key(tenant: str, asset_id: str, language: str) -> str:
    """A generated (speech-to-text) track; apart from the manual one of the same language."""
    return asset_prefix(tenant, asset_id) + f"captions/generated/{language}.vtt"


def transcript_key(tenant: str, asset_id: str, language: str, extension: str) -> str:
    """The transcript of one language: `txt` (plain text) or `json` (timed segments)."""
    if extension not in ("txt", "json"):
        raise ValueError(f"no transcript kind {extension!r}")
    return asset_prefix(tenant, asset_id) + f"transcripts/{language}.{extension}"


def speech_prefix(tenant: str, asset_id: str, job: str) -> str:
    """Where one caption job's chunk workers write their transcripts (their only write)."""
    return asset_prefix(tenant, asset_id) + f"speech/{job}/"


def relative(key: str, prefix: str) -> str:
    """`key` (an object, or a folder ending in '/') as a path relative to `prefix`, so that
    manifests stay valid wherever the objects are served from."""
    if not is_under(key.removesuffix("/"), prefix):
        raise ValueError(f"{key!r} is not under {prefix!r}")
    return key[len(prefix):]
