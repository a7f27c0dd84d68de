"""The bucket's CORS rules, set once at operator start-up where the install allows it.

Two replicas setting the same rules is harmless (the call replaces the whole set). A refusal
is not fatal: the operator works without it, but browsers cannot play from another origin,
so it says loudly what an admin must allow or apply instead.
"""

from __future__ import annotations

import asyncio
import logging

from mediaplane.core import bucketcors
from mediaplane.operator.context import Context

log = logging.getLogger(__name__)


async def apply_cors(ctx: Context) -> bool:
    """Sets the configured rules when `bucket_cors` is on; True when they were set."""
    settings = ctx.settings
    if not settings.bucket_cors:
        return False
    rules = bucketcors.rules(bucketcors.origins(settings.bucket_cors_playback_origins),
                             bucketcors.origins(settings.bucket_cors_upload_origins))
    try:
        await asyncio.to_thread(ctx.storage.configure_cors, rules)
    except Exception as error:  # any refusal or outage: report it, keep running
        log.warning("could not set the CORS rules of bucket %s (%s): browsers on other "
                    "origins cannot play until they are set; allow s3:PutBucketCORS or apply "
                    "`mediaplane bucket-cors` yourself", ctx.storage.bucket, error)
        return False
    log.info("bucket %s: CORS rules set (%d)", ctx.storage.bucket, len(rules))
    return True
