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
from mediaplane.core.resources import (
    GeneratedCaption,
    ManualCaption,
    MediaAsset,
    TranscriptTrack,
)
from mediaplane.core.states import CaptionSource, VariantState
from mediaplane.core.tasks import MediaKind, VariantType

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

    def stream_token(self, asset_id: str, scope: str = ALL) -> tuple[str, datetime]:
        """A stream token for the caller: the whole asset, or one rendition (`scope`). By
        id: a list page presents 200 assets of about 7 tokens each, and an asset derives
        its id from its object's name (a pattern match) each time it is asked."""
        grant = self.context.signer.sign(self.principal, asset_id, scope=scope)
        return self.context.signer.token(grant), datetime.fromtimestamp(grant.expires_at, UTC)

    def asset(self, asset: MediaAsset) -> models.MediaAsset:
        spec, status = asset.spec, asset.status
        probe = status.probe
        asset_id = asset.asset_id
        token, expires = self.stream_token(asset_id)
        links = Links(self.base, asset_id)
        streams = None
        if asset.playable and spec.kind in STREAMED_KINDS:
            streams = models.Streams(hls=with_token(links.hls(ALL), token),
                                     dash=with_token(links.dash(ALL), token), expires_at=expires)
        return models.MediaAsset(
            id=asset_id, kind=spec.kind, source=spec.source.origin, status=asset.phase,
            playable=asset.playable, mime=spec.mime, filename=spec.filename,
            width=probe.width if probe else None, height=probe.height if probe else None,
            duration_seconds=probe.duration_seconds if probe else None,
            sha256=spec.sha256, size_bytes=spec.size_bytes,
            variants=self.variants(asset, token), captions=self.captions(asset),
            transcript=self.transcript(asset, None), streams=streams,
            player=with_token(links.player(), token) if asset.playable else None,
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
        asset_id = asset.asset_id
        if token is None:
            token, _ = self.stream_token(asset_id)
        links = Links(self.base, asset_id)
        serve = asset.playable
        out = []
        for v in asset.status.variants:
            done = v.state is VariantState.SUCCEEDED and serve
            streamable = done and v.streamable
            # One token per rendition, for its HLS and its DASH link alike (same scope).
            scoped = self.stream_token(asset_id, v.name)[0] if streamable else None
            url = None
            if done and v.type is VariantType.STORYBOARD:
                # Served through the façade: its cues name the sprite, presigned there.
                url = with_token(links.storyboard(), token)
            elif done and v.file:
                url = self.context.storage.presign_get(v.file, self.context.presign_seconds)
            out.append(models.Variant(
                name=v.name, type=v.type, state=v.state, width=v.width, height=v.height,
                bandwidth=v.bandwidth, codecs=v.codecs, duration_seconds=v.duration_seconds,
                size_bytes=v.bytes, retries=v.retries or 0,
                error=v.message if v.state is VariantState.FAILED else None,
                hls=with_token(links.hls(v.name), scoped) if scoped else None,
                dash=with_token(links.dash(v.name), scoped) if scoped else None,
                url=url))
        return out

    def captions(self, asset: MediaAsset, language: str | None = None) -> list[models.Caption]:
        out = []
        for track in [*asset.spec.captions, *asset.status.captions]:
            if language and track.language.lower() != language.lower():
                continue
            manual = isinstance(track, ManualCaption)
            generated = track if isinstance(track, GeneratedCaption) else None
            out.append(models.Caption(
                language=track.language, approved=asset.track_approved(track),
                label=track.label if isinstance(track, ManualCaption) else None,
                source=CaptionSource.MANUAL if manual else CaptionSource.GENERATED,
                model=generated.model if generated else None,
                review=asset.review(track.language) if generated else None,
                url=self.context.storage.presign_get(track.key, self.context.presign_seconds)))
        return out

    def transcript(self, asset: MediaAsset, language: str | None) -> models.Transcript | None:
        """The transcript of `language` (any, approved tracks' first, when None)."""
        found = self.transcript_track(asset, language)
        if found is None:
            return None
        seconds = self.context.settings.transcript_url_ttl_seconds
        return models.Transcript(language=found.language,
                                 url=self.context.storage.presign_get(found.key, seconds))

    @staticmethod
    def transcript_track(asset: MediaAsset, language: str | None) -> TranscriptTrack | None:
        items = asset.status.transcripts
        if language is not None:
            return next((t for t in items if t.language.lower() == language.lower()), None)
        approved = {t.language for t in asset.status.captions if asset.track_approved(t)}
        return next((t for t in items if t.language in approved), items[0] if items else None)

    def caption_job(self, asset: MediaAsset, language: str, model: str,
                    review_required: bool) -> models.CaptionJob:
        """The state of the generated track of `language` (pending until the operator
        has picked the request up)."""
        job = asset.status.caption_job(language)
        if job is not None and job.model != model:
            job = None
        track = next((t for t in asset.status.captions
                      if t.language == language and t.model == model), None)
        return models.CaptionJob(
            asset_id=asset.asset_id, language=language, model=model,
            state=job.state if job else VariantState.PENDING,
            review_required=bool(job.review_required) if job else review_required,
            approved=asset.track_approved(track) if track else None,
            chunks=job.chunks if job else None, chunks_done=job.chunks_done if job else None,
            message=job.message if job else None,
            url=self.context.storage.presign_get(track.key, self.context.presign_seconds)
            if track else None)
