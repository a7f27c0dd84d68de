"""The speech routes through FastAPI's TestClient over in-memory stores: the request lands
in the spec once however often it is made, review verdicts, the transcript. The same routes
run over HTTP against the real operator in tests/api/test_speech.py."""

from __future__ import annotations

import pytest

from mediaplane.core import keys, names
from mediaplane.core.resources import (
    CaptionJobStatus,
    GeneratedCaption,
    MediaAsset,
    TranscriptTrack,
)
from mediaplane.core.states import VariantState
from mediaplane.core.tasks import MediaKind
from tests.middle.test_api_routes import Api, api  # noqa: F401 (the fixture)
from tests.support.resources import playable_status

ASSET_ID = "mda_0123456789abcdefghjkmnpqrs"
NAME = names.name_from_asset_id(ASSET_ID)
GENERATE = "/api/v1/media/ai/generate-caption"


@pytest.fixture
def video(api: Api) -> MediaAsset:  # noqa: F811
    asset = MediaAsset.new("acme", ASSET_ID, kind=MediaKind.VIDEO, mime="video/mp4",
                           sha256="a" * 64, size_bytes=1000)
    api.assets.items[("acme", NAME)] = asset.to_body()
    status = playable_status("acme", ASSET_ID)
    assert status.probe is not None
    status.probe = status.probe.model_copy(update={"has_audio": True})
    api.assets.set_status("acme", NAME, status)
    return api.assets.cached("acme", NAME)  # type: ignore[return-value]


def test_a_request_is_recorded_once_with_the_install_s_model(api: Api,  # noqa: F811
                                                             video: MediaAsset) -> None:
    first = api.call("POST", GENERATE, 202, json={"assetId": ASSET_ID, "language": "en-us",
                                                  "reviewRequired": True})["data"]
    assert first == {"assetId": ASSET_ID, "language": "en-US", "model": "whisper-base",
                     "state": "pending", "reviewRequired": True, "approved": None,
                     "chunks": None, "chunksDone": None, "message": None, "url": None}
    spec = api.assets.items[("acme", NAME)]["spec"]
    assert spec["captionRequests"] == {"en-US": {"reviewRequired": True,
                                                 "model": "whisper-base"}}
    version = api.assets.items[("acme", NAME)]["metadata"]["resourceVersion"]
    again = api.call("POST", GENERATE, 202, json={"assetId": ASSET_ID, "language": "en-US"})
    assert again["data"]["reviewRequired"] is True, "a repeat answers the same work"
    assert api.assets.items[("acme", NAME)]["metadata"]["resourceVersion"] == version
    assert api.call("POST", GENERATE, 404, tenant="other",
                    json={"assetId": ASSET_ID, "language": "en"}) == "media.not_found"
    assert api.call("POST", GENERATE, 422, json={"assetId": ASSET_ID, "language": "xx-!"}
                    ) == "validation.language"
    assert api.call("POST", GENERATE, 422, json={"assetId": "mda_nope", "language": "en"}
                    ) == "validation.invalid"
    assert api.call("POST", GENERATE, 422, json={"assetId": ASSET_ID, "language": "xx"}
                    ) == "validation.language"


def test_an_asset_still_transcoding_is_asked_to_retry(api: Api) -> None:  # noqa: F811
    asset = MediaAsset.new("acme", ASSET_ID, kind=MediaKind.AUDIO, mime="audio/mpeg",
                           sha256="a" * 64, size_bytes=1000)
    api.assets.items[("acme", NAME)] = asset.to_body()
    response = api.client.post(GENERATE, headers=api.headers(),
                               json={"assetId": ASSET_ID, "language": "en"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "media.transcoding"
    assert response.headers["retry-after"]
    assert "captionRequests" not in api.assets.items[("acme", NAME)]["spec"]


def test_review_verdicts_and_the_transcript(api: Api, video: MediaAsset) -> None:  # noqa: F811
    path = f"/api/v1/media/{ASSET_ID}/captions/en-US"
    assert api.call("PATCH", path, 404, json={"approved": True}) == "caption.not_found"
    status = video.status.model_copy(deep=True)
    vtt = keys.generated_caption_key("acme", ASSET_ID, "en-US")
    txt = keys.transcript_key("acme", ASSET_ID, "en-US", "txt")
    status.captions = [GeneratedCaption(language="en-US", key=vtt, approved=False,
                                        model="whisper-base")]
    status.transcripts = [TranscriptTrack(language="en-US", key=txt, model="whisper-base")]
    status.caption_jobs = [CaptionJobStatus(language="en-US", model="whisper-base",
                                            state=VariantState.SUCCEEDED,
                                            review_required=True)]
    api.assets.set_status("acme", NAME, status)
    api.objects.put(vtt, b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nHello.\n", "text/vtt")
    api.objects.put(txt, b"Hello.\n", "text/plain")

    listed = api.call("GET", f"/api/v1/media/{ASSET_ID}/captions", 200)["data"]
    assert [(c["source"], c["approved"], c["review"]) for c in listed] == [
        ("generated", False, None)]
    approved = api.call("PATCH", path, 200, json={"approved": True})["data"]
    assert (approved["approved"], approved["review"]) == (True, "approved")
    assert api.assets.items[("acme", NAME)]["spec"]["captionReview"] == {"en-US": "approved"}
    rejected = api.call("PATCH", path.replace("en-US", "en-us"), 200,
                        json={"approved": False})["data"]
    assert (rejected["approved"], rejected["review"]) == (False, "rejected")
    assert api.call("PATCH", path.replace("en-US", "english!"), 422,
                    json={"approved": True}) == "validation.language"

    transcript = api.call("GET", f"/api/v1/media/{ASSET_ID}/transcript", 200,
                          params={"lang": "en-US"})["data"]
    assert (transcript["language"], transcript["text"]) == ("en-US", "Hello.\n")
    assert "expires=900" in transcript["url"]
    assert api.call("GET", f"/api/v1/media/{ASSET_ID}/transcript", 404,
                    params={"lang": "fr"}) == "transcript.not_found"
    asset = api.call("GET", f"/api/v1/media/{ASSET_ID}", 200)["data"]
    assert asset["transcript"]["language"] == "en-US"
