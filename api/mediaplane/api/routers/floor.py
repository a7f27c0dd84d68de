"""The benchmark's floor: a trivial route of the same process, off unless asked for.

`make bench` compares each measured route with this one at the same concurrency: the same
server, middleware and client, a body of the same size, and no work. A GET stands beside
the GET routes; a POST, which reads the request body and drops it, stands beside
upload-url, so sending the JSON body counts on both sides and the ratio is the route's own
work. Mounted only when the setting `MEDIAPLANE_API_BENCH_FLOOR` is true (the bench sets
it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

router = APIRouter(tags=["operations"], include_in_schema=False)
MAX_BYTES = 1 << 20
Size = Annotated[int, Query(ge=0, le=MAX_BYTES)]


@router.get("/bench/floor")
async def floor(size: Size = 0) -> Response:
    return Response(b"x" * size, media_type="application/json")


@router.post("/bench/floor")
async def floor_with_body(request: Request, size: Size = 0) -> Response:
    await request.body()
    return Response(b"x" * size, media_type="application/json")
