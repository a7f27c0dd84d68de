"""MediaAsset custom resources as the contract's response bodies.

Signed links are made here, for the caller: stream URLs carry a stream token for this user
and asset; single-file variants and caption files are presigned object URLs.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mediaplane.api import models
from mediaplane.api.auth import Principal
from mediaplane.api.context import ApiContext
from mediaplane.api.streaming import ALL, Links, with_token
from mediaplane.core.resources import ManualCaption, MediaAsset
from mediaplane.core.states import CaptionSource, VariantState
from mediaplane.core.tasks import MediaKind

STREAMED_KINDS = (MediaKind.VIDEO, MediaKind.AUDIO)


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Presenter:
    def __init__(self, context: ApiContext, principal: Principal) -> None:
        self.context = context
        self.principal = principal
        self.base = context.settings.public_url.rstrip("/")

    def stream_token(self, asset: MediaAsset) -> tuple[str, datetime]:
        grant = self.context.signer.sign(self.principal, asset.asset_id)
        return self.context.signer.token(grant), datetime.fromtimestamp(grant.expires_at, UTC)

    def asset(self, asset: MediaAsset) -> models.MediaAsset:
        spec, status = asset.spec, asset.status
        probe = status.probe
        token, expires = self.stream_token(asset)
        links = Links(self.base, asset.asset_id)
        streams = None
        if asset.playable and spec.kind in STREAMED_KINDS:
            streams = models.Streams(hls=with_token(links.hls(ALL), token),
                                     dash=with_token(links.dash(ALL), token), expires_at=expires)
        return models.MediaAsset(
            id=asset.asset_id, kind=spec.kind, source=spec.source.origin, status=asset.phase,
            playable=asset.playable, mime=spec.mime, filename=spec.filename,
            width=probe.width if probe else None, height=probe.height if probe else None,
            duration_seconds=probe.duration_seconds if probe else None,
            sha256=spec.sha256, size_bytes=spec.size_bytes,
            variants=self.variants(asset, token), captions=self.captions(asset),
            transcript=self.transcript(asset, None), streams=streams,
            created_at=_parse_time(asset.metadata.creation_timestamp),
            quarantine_reason=status.quarantine.reason if status.quarantine else None,
            generation=self.generation(asset),
        )

    @staticmethod
    def generation(asset: MediaAsset) -> models.Generation | None:
        spec = asset.spec.generation
        if spec is None:
            return None
        state = asset.status.generation
        return models.Generation(
            type=spec.type, model=spec.model,
            state=state.state if state is not None else VariantState.PENDING,
            reason=state.reason if state is not None else None,
            message=state.message if state is not None else None,
            provider_seconds=state.provider_seconds if state is not None else None)

    def variants(self, asset: MediaAsset, token: str | None = None) -> list[models.Variant]:
        if token is None:
            token, _ = self.stream_token(asset)
        links = Links(self.base, asset.asset_id)
        serve = asset.playable
        out = []
        for v in asset.status.variants:
            done = v.state is VariantState.SUCCEEDED and serve
            streamable = done and v.streamable
            url = None
            if done and v.file:
                url = self.context.storage.presign_get(v.file, self.context.presign_seconds)
            out.append(models.Variant(
                name=v.name, type=v.type, state=v.state, width=v.width, height=v.height,
                bandwidth=v.bandwidth, codecs=v.codecs, duration_seconds=v.duration_seconds,
                size_bytes=v.bytes,
                hls=with_token(links.hls(v.name), token) if streamable else None,
                dash=with_token(links.dash(v.name), token) if streamable else None,
                url=url))
        return out

    def captions(self, asset: MediaAsset, language: str | None = None) -> list[models.Caption]:
        out = []
        for track in [*asset.spec.captions, *asset.status.captions]:
            if language and track.language.lower() != language.lower():
                continue
            manual = isinstance(track, ManualCaption)
            out.append(models.Caption(
                language=track.language, approved=track.is_approved,
                label=track.label if isinstance(track, ManualCaption) else None,
                source=CaptionSource.MANUAL if manual else CaptionSource.GENERATED,
                url=self.context.storage.presign_get(track.key, self.context.presign_seconds)))
        return out

    def transcript(self, asset: MediaAsset, language: str | None) -> models.Transcript | None:
        for item in asset.status.transcripts:
            if language is None or item.language.lower() == language.lower():
                return models.Transcript(language=item.language, url=self.context.storage
                                         .presign_get(item.key, self.context.presign_seconds))
        return None
