"""The asset-level manifests the operator stores: an HLS master playlist and a DASH MPD over
the renditions that are done, with paths relative to the asset prefix (they stay valid
wherever the objects are served from). Text in, text out; `core.manifests` writes them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mediaplane.core import keys
from mediaplane.core.manifests import dash, hls
from mediaplane.core.resources import VariantStatus, streamable


def hls_master(variants: Sequence[VariantStatus], asset_prefix: str) -> str:
    def uri(variant: VariantStatus) -> str:
        assert variant.playlist is not None  # streamable() guarantees it
        return keys.relative(variant.playlist, asset_prefix)

    return hls.master_playlist(variants, uri)


def dash_mpd(variants: Sequence[VariantStatus], rendition_mpds: Mapping[str, str],
             asset_prefix: str) -> str:
    """`rendition_mpds` maps a variant name to the MPD its worker wrote."""
    renditions = []
    for v in streamable(variants):
        assert v.folder is not None
        renditions.append(dash.Rendition(id=v.name, folder=keys.relative(v.folder, asset_prefix),
                                         mpd=rendition_mpds[v.name], codecs=v.codecs))
    return dash.merge(renditions)
