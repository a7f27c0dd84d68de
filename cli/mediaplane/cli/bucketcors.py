"""`mediaplane bucket-cors`: print the bucket CORS configuration mediaplane needs, as JSON,
for an admin to apply where the operator may not (`aws s3api put-bucket-cors
--bucket B --cors-configuration "$(mediaplane bucket-cors --upload-origin https://app.example)"`).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mediaplane.cli.main import Subparsers


def register(subparsers: Subparsers[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("bucket-cors",
                                   help="print the bucket's CORS rules (JSON for put-bucket-cors)")
    parser.add_argument("--playback-origin", action="append", default=None,
                        help="origin allowed to GET/HEAD media (repeat; default: *)")
    parser.add_argument("--upload-origin", action="append", default=[],
                        help="origin allowed to POST browser uploads (repeat; default: none)")
    parser.set_defaults(func=cmd_bucket_cors)


def cmd_bucket_cors(args: argparse.Namespace) -> int:
    from mediaplane.core import bucketcors

    playback = args.playback_origin or ["*"]
    print(json.dumps({"CORSRules": bucketcors.rules(playback, args.upload_origin)}, indent=2))
    return 0
