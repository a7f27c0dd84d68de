"""The bucket's CORS rules: what a page on another origin may do with presigned URLs.

Players fetch manifests from the API and media straight from the bucket, so the bucket must
answer cross-origin GET and HEAD, with `Range` allowed (players read byte ranges) and the
headers a player reads exposed. Presigned URLs are the grant, so playback may be allowed
from any origin. Browser uploads (the presigned POST of upload-url) need a second rule for
the origins that run an upload page, exposing the ETag that finalize takes.

The operator sets these at start-up where it may (`MEDIAPLANE_BUCKET_CORS`), the dev
environment sets them on its SeaweedFS; where neither may, an admin applies the same rules
(`aws s3api put-bucket-cors --cors-configuration "$(mediaplane bucket-cors)"`, see README).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PLAYBACK_METHODS = ("GET", "HEAD")
PLAYBACK_HEADERS = ("Range",)
PLAYBACK_EXPOSED = ("Content-Length", "Content-Range", "ETag")
UPLOAD_METHODS = ("POST",)
UPLOAD_EXPOSED = ("ETag",)
MAX_AGE_SECONDS = 3600


def rules(playback_origins: Sequence[str], upload_origins: Sequence[str] = ()
          ) -> list[dict[str, Any]]:
    """S3 CORSRules: playback from `playback_origins`, form uploads from `upload_origins`."""
    out: list[dict[str, Any]] = []
    if playback_origins:
        out.append({"ID": "mediaplane-playback", "AllowedMethods": list(PLAYBACK_METHODS),
                    "AllowedOrigins": list(playback_origins),
                    "AllowedHeaders": list(PLAYBACK_HEADERS),
                    "ExposeHeaders": list(PLAYBACK_EXPOSED), "MaxAgeSeconds": MAX_AGE_SECONDS})
    if upload_origins:
        out.append({"ID": "mediaplane-upload", "AllowedMethods": list(UPLOAD_METHODS),
                    "AllowedOrigins": list(upload_origins),
                    "ExposeHeaders": list(UPLOAD_EXPOSED), "MaxAgeSeconds": MAX_AGE_SECONDS})
    return out


def origins(value: str) -> list[str]:
    """A comma-separated setting as a list of origins."""
    return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
