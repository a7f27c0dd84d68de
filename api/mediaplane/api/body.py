"""JSON bodies in and out of a route without FastAPI's generic per-request machinery.

upload-url is the authenticated route called at the highest rate, and a profile of it at
50 clients put most of its CPU in FastAPI rather than in the route: the content type parsed
through the `email` package, `json.loads` and then a second validation pass, a dependency
graph solved per request, the response model validated again on its way out. A route that
takes the `Request` reads its body with `read_model` (one pydantic-core pass from bytes to
the model) and answers with `json_response`; errors are FastAPI's own
`RequestValidationError`, so the one error handler answers them exactly as before
(400 `validation.malformed`, 422 `validation.invalid`). `documented_body` keeps the route's
request body in the OpenAPI document.
"""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
COMPONENTS = "#/components/schemas/{model}"


def _is_json(content_type: str | None) -> bool:
    """application/json or application/<anything>+json, parameters ignored (as FastAPI)."""
    if not content_type:
        return False  # FastAPI's strict content type: no header, no JSON
    media_type = content_type.partition(";")[0].strip().lower()
    maintype, _, subtype = media_type.partition("/")
    return maintype == "application" and (subtype == "json" or subtype.endswith("+json"))


async def read_model(request: Request, model: type[M]) -> M:
    """The request's JSON body as `model`; a missing, non-JSON or invalid body raises what
    FastAPI raises for a body parameter (locations start with "body")."""
    raw = await request.body()
    if not raw:
        raise RequestValidationError([{"type": "missing", "loc": ("body",),
                                       "msg": "Field required", "input": None}])
    if not _is_json(request.headers.get("content-type")):
        raise RequestValidationError([{
            "type": "model_attributes_type", "loc": ("body",),
            "msg": "Input should be a JSON object (send Content-Type: application/json)",
            "input": None}])
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise RequestValidationError([
            {**problem, "loc": ("body", *problem["loc"])}
            for problem in error.errors(include_url=False, include_input=False)]) from None


def json_response(content: BaseModel, headers: dict[str, str] | None = None) -> Response:
    """`content` as FastAPI would answer it for a response model (aliases on the wire)."""
    return Response(content.model_dump_json(by_alias=True), media_type="application/json",
                    headers=headers)


def documented_body(model: type[BaseModel], *, bearer: str = "HTTPBearer") -> dict[str, Any]:
    """`openapi_extra` for such a route: its JSON body and its bearer authentication, which
    FastAPI documents only for parameters and dependencies it resolves itself. Models the
    body refers to must be components of the document (used by another route)."""
    schema = model.model_json_schema(ref_template=COMPONENTS)
    schema.pop("$defs", None)
    return {"requestBody": {"content": {"application/json": {"schema": schema}},
                            "required": True},
            "security": [{bearer: []}]}
