"""Domain errors and their one mapping to HTTP; every error body is JSON."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


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
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "http_error"
        return JSONResponse(_body(code, exc.detail), status_code=exc.status_code)
