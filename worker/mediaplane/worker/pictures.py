"""The size of a picture the worker's ffmpeg wrote (a poster, an image size, a storyboard's
sprite), read from its header in the worker's own process.

An ffprobe for these two numbers cost a process start, about 40 ms of CPU. For the
storyboard it was the last step before a shared encode's manifests, on the rest of the
ladder's way to complete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import imagesize

if TYPE_CHECKING:
    from pathlib import Path


def picture_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from a JPEG's or WebP's header; None where the header says nothing
    readable."""
    try:
        width, height = imagesize.get(str(path))
    except (OSError, ValueError):
        return None
    return (int(width), int(height)) if width > 0 and height > 0 else None
