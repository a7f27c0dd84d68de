"""`mediaplane bucket-cors`: print the bucket CORS configuration mediaplane needs, as JSON,
for an admin to apply where the operator may not (`aws s3api put-bucket-cors
--bucket B --cors-configuration "$(mediaplane bucket-cors --upload-origin https://app.example)"`).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    from mediaplane.cli.main import ADMIN_PANEL

    app.command("bucket-cors", rich_help_panel=ADMIN_PANEL)(bucket_cors)


def bucket_cors(
    playback_origin: Annotated[list[str] | None, typer.Option(
        help="Origin allowed to GET/HEAD media (repeat; default: *).")] = None,
    upload_origin: Annotated[list[str] | None, typer.Option(
        help="Origin allowed to POST browser uploads (repeat; default: none).")] = None,
) -> None:
    """Print the bucket's CORS rules (JSON for `aws s3api put-bucket-cors`)."""
    from mediaplane.core import bucketcors

    playback = playback_origin or ["*"]
    print(json.dumps({"CORSRules": bucketcors.rules(playback, upload_origin or [])}, indent=2))
