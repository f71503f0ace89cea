"""Domain errors and their one mapping to HTTP; every error body is JSON."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match


class ApiError(Exception):
    """An error a client can act on: HTTP status, a stable code, a sentence."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class Unauthorized(ApiError):
    """No key, or a key this service does not know."""

    status = 401
    code = "unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    """A known key used outside its role."""

    status = 403
    code = "forbidden"


class NotFound(ApiError):
    """The named resource does not exist."""

    status = 404
    code = "not_found"


class Conflict(ApiError):
    """The request is valid but not allowed in the resource's current state."""

    status = 409
    code = "conflict"


class InvalidParameter(ApiError):
    """A parameter that passed type checks but makes no sense (e.g. a foreign cursor)."""

    status = 422
    code = "invalid_parameter"

    def __init__(self, parameter: str, detail: str, *, reason_code: str | None = None) -> None:
        super().__init__(detail)
        self.parameter = parameter
        # For what the worker would dead-letter: the DLQ's own label (e.g. `ts_out_of_range`).
        self.reason_code = reason_code


class RateLimited(ApiError):
    """The key made more requests than its budget allows."""

    status = 429
    code = "rate_limited"


class Unavailable(ApiError):
    """A backing service (Redis) did not answer."""

    status = 503
    code = "unavailable"


class ProblemOut(BaseModel):
    """One part of a request that did not validate."""

    model_config = ConfigDict(populate_by_name=True)

    parameter: str = Field(description="the parameter or body field (dotted path)")
    in_: str = Field(alias="in", description="where it was: path, query, header or body")
    message: str


class ErrorOut(BaseModel):
    """The body of every error answer. `error` is a stable code a client can branch on
    (`unauthorized`, `forbidden`, `not_found`, `conflict`, `invalid_request`,
    `invalid_parameter`, `rate_limited`, `unavailable`, and before a request reaches a route:
    `bad_request` 400, `method_not_allowed` 405, `request_timeout` 408, `payload_too_large`
    413, `request_header_fields_too_large` 431); `detail` says what is wrong in words, or for
    `invalid_request` lists each part that did not validate."""

    error: str
    detail: str | list[ProblemOut]
    parameter: str | None = Field(None, description="invalid_parameter: the parameter at fault")
    reason_code: str | None = Field(
        None,
        description="invalid_parameter of a screened transfer: the dead-letter reason "
        "the worker would give it",
    )


_WHEN = {
    400: "The body is not readable: not UTF-8, or a malformed Content-Length",
    401: "No key, or a key this service does not know (or revoked)",
    403: "The key's role may not use this route",
    404: "No such resource",
    409: "Not allowed in the resource's current state",
    413: "The body is larger than this route accepts (`FRAUDWATCH_MAX_BODY_BYTES`)",
    422: "A parameter or the body does not validate, or makes no sense",
    429: "The key's request budget is spent; `Retry-After` says when to retry",
    503: "Redis did not answer, or (screening) too many requests wait: `Retry-After` says when",
}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds until the key may ask again",
        "schema": {"type": "integer"},
    }
}


def error_responses(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for error statuses, each with the `ErrorOut` body: the standard
    description, or the one given as `e<status>=` (`e404="No such alert"`)."""
    return {
        status: {
            "model": ErrorOut,
            "description": described.get(f"e{status}", _WHEN[status]),
            **({"headers": _RETRY_AFTER} if status == 429 else {}),
        }
        for status in statuses
    }


# Every route that takes a key (role-restricted or not: `/v1/me` adds no 403).
KEYED = error_responses(401, 403, 429, 503)


# Errors the framework raises before a route runs (an unknown path, a body that is not text).
_FRAMEWORK_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


def _body(code: str, detail: object, **extra: object) -> dict[str, object]:
    return {"error": code, "detail": detail, **extra}


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to JSON bodies."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        extra: dict[str, object] = {}
        if isinstance(exc, InvalidParameter):
            extra["parameter"] = exc.parameter
            if exc.reason_code is not None:
                extra["reason_code"] = exc.reason_code
        return JSONResponse(
            _body(exc.code, exc.detail, **extra), status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {
                "parameter": ".".join(str(part) for part in error["loc"][1:]) or error["loc"][0],
                "in": error["loc"][0],
                "message": error["msg"],
            }
            for error in exc.errors()
        ]
        return JSONResponse(_body("invalid_request", problems), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _FRAMEWORK_CODES.get(exc.status_code, "http_error")
        headers = exc.headers
        if exc.status_code == 405:  # HTTP requires `Allow`, naming every method of the path
            headers = {**(headers or {}), "Allow": ", ".join(_methods_of(request))}
        return JSONResponse(_body(code, exc.detail), status_code=exc.status_code, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _methods_of(request: Request) -> list[str]:
    """Every method some route serves at the request's path (Starlette's own 405 names only
    those of the first route that matched the path)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in routes)
    ]  # fmt: skip


def document_errors(app: FastAPI) -> None:
    """Make `/openapi.json` describe the errors the framework answers for every route: the
    422 body this API sends (`ErrorOut`, which every keyed route documents for its other
    errors) instead of FastAPI's own validation error, which no route of ours ever answers;
    for a route that takes a body, 400 (not readable) and 413 (over the size limit); for one
    with a path parameter, 404 (a value no route matches, e.g. one with a line break)."""
    default = "#/components/schemas/HTTPValidationError"
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
    unmatched = {"description": "Nothing at this path", "content": body}

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for path, operations in schema["paths"].items():
                for operation in operations.values():
                    _framework_errors(path, operation)
            for name in ("HTTPValidationError", "ValidationError"):
                schema["components"]["schemas"].pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    def _framework_errors(path: str, operation: dict[str, Any]) -> None:
        responses = operation["responses"]
        if "requestBody" in operation:
            for status in (400, 413):
                responses.setdefault(str(status), {"description": _WHEN[status], "content": body})
        if "{" in path:
            responses.setdefault("404", unmatched)
        answer = responses.get("422", {})
        for media in answer.get("content", {}).values():
            if media.get("schema", {}).get("$ref") == default:
                media["schema"]["$ref"] = "#/components/schemas/ErrorOut"
                answer["description"] = _WHEN[422]

    app.openapi = openapi  # type: ignore[method-assign]
