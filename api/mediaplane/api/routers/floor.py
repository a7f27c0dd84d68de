"""The benchmark's floor: a trivial route of the same process, off unless asked for.

`make bench` compares each measured route with this one at the same concurrency: the same
server, middleware and client, a body of the same size, and no work. Mounted only when the
setting `MEDIAPLANE_API_BENCH_FLOOR` is true (the bench sets it).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

router = APIRouter(tags=["operations"], include_in_schema=False)
MAX_BYTES = 1 << 20


@router.get("/bench/floor")
async def floor(size: Annotated[int, Query(ge=0, le=MAX_BYTES)] = 0) -> Response:
    return Response(b"x" * size, media_type="application/json")
