"""MediaAsset custom resources as the contract's response bodies.

Signed links are made here, for the caller: stream URLs carry a stream token for this user
and asset; single-file variants and caption files are presigned object URLs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, cast

from mediaplane.api import models
from mediaplane.api.auth import Principal
from mediaplane.api.context import ApiContext
from mediaplane.api.streaming import ALL, Links, with_token
from mediaplane.core import names

STREAMABLE = ("video", "audio")


def asset_id(asset: dict[str, Any]) -> str:
    return names.asset_id_from_name(asset["metadata"]["name"])


def phase(asset: dict[str, Any]) -> models.StatusName:
    value = (asset.get("status") or {}).get("phase") or "pending"
    return cast(models.StatusName, value)


def playable(asset: dict[str, Any]) -> bool:
    status = asset.get("status") or {}
    return bool(status.get("playable")) and phase(asset) not in ("quarantined", "failed")


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Presenter:
    def __init__(self, context: ApiContext, principal: Principal) -> None:
        self.context = context
        self.principal = principal
        self.base = context.settings.public_url.rstrip("/")

    def stream_token(self, asset: dict[str, Any]) -> tuple[str, datetime]:
        grant = self.context.signer.sign(self.principal, asset_id(asset))
        return self.context.signer.token(grant), datetime.fromtimestamp(grant.expires_at, UTC)

    def asset(self, asset: dict[str, Any]) -> models.MediaAsset:
        spec, status = asset["spec"], asset.get("status") or {}
        probe = status.get("probe") or {}
        token, expires = self.stream_token(asset)
        links = Links(self.base, asset_id(asset))
        streams = None
        if playable(asset) and spec["kind"] in STREAMABLE:
            streams = models.Streams(hls=with_token(links.hls(ALL), token),
                                     dash=with_token(links.dash(ALL), token), expires_at=expires)
        return models.MediaAsset(
            id=asset_id(asset), kind=spec["kind"],
            source=(spec.get("source") or {}).get("origin", "object"),
            status=phase(asset), playable=playable(asset), mime=spec["mime"],
            filename=spec.get("filename"),
            width=probe.get("width"), height=probe.get("height"),
            duration_seconds=probe.get("durationSeconds"),
            sha256=spec["sha256"], size_bytes=spec["sizeBytes"],
            variants=self.variants(asset, token), captions=self.captions(asset),
            transcript=self.transcript(asset, None), streams=streams,
            created_at=_parse_time(asset["metadata"].get("creationTimestamp")),
            quarantine_reason=(status.get("quarantine") or {}).get("reason"),
        )

    def variants(self, asset: dict[str, Any], token: str | None = None) -> list[models.Variant]:
        if token is None:
            token, _ = self.stream_token(asset)
        links = Links(self.base, asset_id(asset))
        serve = playable(asset)
        out = []
        for v in (asset.get("status") or {}).get("variants") or []:
            done = v.get("state") == "succeeded" and serve
            streamable = done and v["type"] in STREAMABLE and v.get("playlist")
            url = None
            if done and v.get("file"):
                url = self.context.storage.presign_get(v["file"], self.context.presign_seconds)
            out.append(models.Variant(
                name=v["name"], type=v["type"], state=v["state"], width=v.get("width"),
                height=v.get("height"), bandwidth=v.get("bandwidth"), codecs=v.get("codecs"),
                duration_seconds=v.get("durationSeconds"), size_bytes=v.get("bytes"),
                hls=with_token(links.hls(v["name"]), token) if streamable else None,
                dash=with_token(links.dash(v["name"]), token) if streamable else None,
                url=url))
        return out

    def captions(self, asset: dict[str, Any], language: str | None = None
                 ) -> list[models.Caption]:
        out = []
        manual = (asset.get("spec") or {}).get("captions") or []
        generated = (asset.get("status") or {}).get("captions") or []
        groups: tuple[tuple[Literal["manual", "generated"], list[dict[str, Any]]], ...] = (
            ("manual", manual), ("generated", generated))
        for source, tracks in groups:
            for track in tracks:
                if language and track["language"].lower() != language.lower():
                    continue
                out.append(models.Caption(
                    language=track["language"], approved=bool(track.get("approved", True)),
                    label=track.get("label"), source=source,
                    url=self.context.storage.presign_get(track["key"],
                                                         self.context.presign_seconds)))
        return out

    def transcript(self, asset: dict[str, Any], language: str | None
                   ) -> models.Transcript | None:
        for item in (asset.get("status") or {}).get("transcripts") or []:
            if language is None or item["language"].lower() == language.lower():
                return models.Transcript(language=item["language"], url=self.context.storage
                                         .presign_get(item["key"], self.context.presign_seconds))
        return None
