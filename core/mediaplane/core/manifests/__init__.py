"""HLS and DASH in one place: the parsers and writers the worker, the operator and the API
share (`hls`, `dash`). Which renditions a manifest lists is `core.resources.streamable`."""

from __future__ import annotations

from mediaplane.core.manifests import dash, hls

__all__ = ["dash", "hls"]
