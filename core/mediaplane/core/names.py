"""Fixed names and the deterministic naming of child objects.

The API group, kinds, labels and the asset id format are fixed: the CRDs, the chart, the
operator, the API and users' manifests all depend on them.

Children are named from their parent so that a create after a crash or a restart hits
AlreadyExists instead of making a duplicate: the API server's name uniqueness is the lock.
"""

from __future__ import annotations

import re
import secrets

GROUP = "media.mediaplane.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
ASSET_KIND = "MediaAsset"
ASSET_PLURAL = "mediaassets"
JOB_KIND = "TranscodeJob"
JOB_PLURAL = "transcodejobs"
WEBHOOK_PLURAL = "webhookendpoints"

# Labels put on every child so they can be listed per asset without reading owner refs.
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "mediaplane"
LABEL_ASSET = f"{GROUP}/asset"
LABEL_TRANSCODE_JOB = f"{GROUP}/transcodejob"
# The uid of the TranscodeJob a Job and its pods were made for: a TranscodeJob deleted and
# made again under the same name (a discarded speculative rung) must not take the old
# Job's outcome for its own.
LABEL_TRANSCODE_JOB_UID = f"{GROUP}/transcodejob-uid"
LABEL_TASK = f"{GROUP}/task"
# On a TranscodeJob started before the probe accepted the source (see reconcile.py).
LABEL_SPECULATIVE = f"{GROUP}/speculative"
# "background" on a TranscodeJob (and its Job and pods) that requests little CPU so that
# a first wave beside it keeps the node's CPU (the operator's `playable_first`).
LABEL_PRIORITY = f"{GROUP}/priority"
PRIORITY_BACKGROUND = "background"
FINALIZER = f"{GROUP}/objects"
# Set by the Job controller on a Job's pods.
BATCH_JOB_NAME_LABEL = "batch.kubernetes.io/job-name"

# A tenant is a namespace with this label set to "true"; its name is a DNS-1123 label.
TENANT_LABEL = f"{GROUP}/tenant"
TENANT_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Per-tenant limit on one upload (bytes), as a namespace annotation.
MAX_UPLOAD_ANNOTATION = f"{GROUP}/max-upload-bytes"
# Auto-captions of a tenant: a BCP 47 tag turns them on in that language, "off" turns them
# off (the chart's default applies without it); "true" on the second requires a review.
AUTO_CAPTIONS_ANNOTATION = f"{GROUP}/auto-captions"
AUTO_CAPTIONS_REVIEW_ANNOTATION = f"{GROUP}/auto-captions-review"
# The step of a caption job a batch Job runs (plan, transcribe).
LABEL_STEP = f"{GROUP}/step"
# Who asked for an asset through the REST API (the token's `sub`).
UPLOADED_BY_ANNOTATION = f"{GROUP}/uploaded-by"
# AI generation, per tenant (namespace annotations): budgets as "<units>/<period>" in the
# syntax of the rate limits ("100/day", "20 per 2 hours"), and terms the tenant refuses
# in prompts on top of the built-in rules (comma-separated).
AI_IMAGE_BUDGET_ANNOTATION = f"{GROUP}/ai-image-budget"
AI_SPEECH_BUDGET_ANNOTATION = f"{GROUP}/ai-speech-budget"
AI_BLOCKED_TERMS_ANNOTATION = f"{GROUP}/ai-blocked-terms"
# On an AI asset: the budget window its unit was taken from (for the refund on failure).
AI_BUDGET_WINDOW_ANNOTATION = f"{GROUP}/ai-budget-window"

CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
ASSET_ID_PATTERN = re.compile(rf"^mda_[{CROCKFORD}]{{26}}$")
ASSET_NAME_PATTERN = re.compile(rf"^mda-[{CROCKFORD}]{{26}}$")
# Kubernetes label values and Job names (which become a pod label) are limited to 63.
MAX_CHILD_NAME = 63


def new_asset_id() -> str:
    """A random asset id: 130 bits of entropy in 26 Crockford base32 characters."""
    return "mda_" + "".join(secrets.choice(CROCKFORD) for _ in range(26))


def asset_id_from_digest(digest: bytes) -> str:
    """A deterministic asset id from a digest, for race-free dedup by name."""
    value = int.from_bytes(digest[:17], "big") >> 6  # 130 bits
    chars = []
    for _ in range(26):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "mda_" + "".join(reversed(chars))


def name_from_asset_id(asset_id: str) -> str:
    """The MediaAsset object name of a REST asset id (`mda_…` → `mda-…`)."""
    if not ASSET_ID_PATTERN.match(asset_id):
        raise ValueError(f"not an asset id: {asset_id!r}")
    return asset_id.replace("_", "-", 1)


def asset_id_from_name(name: str) -> str:
    """The REST asset id of a MediaAsset object name (`mda-…` → `mda_…`)."""
    if not ASSET_NAME_PATTERN.match(name):
        raise ValueError(f"not a MediaAsset name: {name!r}")
    return name.replace("-", "_", 1)


def child_name(asset: str, task: str) -> str:
    """The name shared by a TranscodeJob and its batch Job, e.g. `mda-…-360p`."""
    name = f"{asset}-{task}"
    if len(name) > MAX_CHILD_NAME:
        raise ValueError(f"child name too long ({len(name)} > {MAX_CHILD_NAME}): {name}")
    return name
