"""The player page (`/player/{id}?token=…`): the asset's signed link, opened in a browser.

Reachable only with a valid stream link of that asset; a link that cannot be played (expired,
tampered with, of another asset, not ready) answers a page saying so, with the status and
error code the stream routes would give. A client that does not ask for HTML gets the
contract's error envelope instead.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from mediaplane.api import player
from mediaplane.api.deps import AssetId, Context, OptionalPrincipal
from mediaplane.api.errorhandlers import REQUEST_ID_HEADER, request_id
from mediaplane.api.errors import ApiError
from mediaplane.api.routers.streaming import STREAM_ERRORS, Token, authorised_asset, presigner
from mediaplane.api.streaming import Links

router = APIRouter(tags=["player"])

EngineParam = Annotated[player.Engine, Query(
    description="hls (hls.js, the default), dash (dash.js) or shaka (Shaka Player on DASH)")]


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


@router.get("/player/{asset_id}", response_class=HTMLResponse,
            summary="The player page of a signed link: video and audio (HLS or DASH, "
            "rendition and caption choice, seek previews) or an image",
            responses={200: {"content": {"text/html": {}}}, **STREAM_ERRORS})
async def player_page(asset_id: AssetId, request: Request, context: Context,
                      principal: OptionalPrincipal, token: Token = None,
                      engine: EngineParam = player.Engine.HLS) -> Response:
    try:
        if not player.vendored():
            raise ApiError("unavailable", "the player's scripts are not built into this "
                           "installation (scripts/vendor-players.sh)")
        _, asset = await authorised_asset(context, asset_id, token, principal)
    except ApiError as error:
        if not _wants_html(request):
            raise
        rid = request_id(request)
        return HTMLResponse(player.render_error(error.code, error.message, rid),
                            status_code=error.status,
                            headers={**player.PAGE_HEADERS, **error.headers,
                                     REQUEST_ID_HEADER: rid})
    links = Links(context.settings.public_url.rstrip("/"), asset_id)
    config = player.config_for(asset, links, token or "", engine,
                               presigner(context, asset.prefix))
    return HTMLResponse(player.render(config), headers=player.PAGE_HEADERS)
