"""API errors with stable ``error_id`` values; clients rely on the id, people read the message."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketState

from callcenter.db_health import REDIS_DOWN, database_unavailable

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error answered as ``{"error_id": ..., "message": ...}`` with ``status``."""

    def __init__(self, status: int, error_id: str, message: str, headers: dict[str, str] | None = None,
                 **extra: object) -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id
        self.message = message
        self.headers = headers
        self.extra = extra


def not_authenticated() -> ApiError:
    return ApiError(401, "not-authenticated", "authentication required", {"WWW-Authenticate": "Bearer"})


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", "your role does not allow this")


def not_found(kind: str) -> ApiError:
    """404 ``{kind}-not-found``; also used for other tenants' ids so existence never leaks."""
    return ApiError(404, f"{kind}-not-found", f"{kind} not found")


def conflict(error_id: str, message: str) -> ApiError:
    return ApiError(409, error_id, message)


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid-request", message)


def _plain(value: object) -> object:
    """A validation context value as JSON: numbers, text and booleans as they are, anything else as text."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def validation_details(errors: Sequence[Any], prefix: Sequence[str | int] = ()) -> list[dict[str, object]]:
    """Pydantic's errors as the 422 ``details`` pages translate: ``loc``, ``msg`` (English, for logs
    and API users), ``type`` (pydantic's error type, or our validators' own code, e.g.
    ``time_range``) and ``ctx`` (the values the message names: ``min_length``, ``expected``...)."""
    details: list[dict[str, object]] = []
    for err in errors:
        detail: dict[str, object] = {"loc": [*prefix, *err.get("loc", ())], "msg": str(err.get("msg", "")),
                                     "type": str(err.get("type", ""))}
        ctx = {key: _plain(value) for key, value in (err.get("ctx") or {}).items() if key != "error"}
        if ctx:
            detail["ctx"] = ctx
        details.append(detail)
    return details


def _body(error_id: str, message: str, **extra: object) -> dict[str, object]:
    return {"error_id": error_id, "message": message, **extra}


async def _unavailable(conn: Request | WebSocket, error_id: str, message: str) -> JSONResponse | None:
    """503 ``error_id`` for a dependency that is down: an HTTP request gets it, as does a WebSocket
    still in its handshake; one already open is closed with 1013 (try again later)."""
    reply = JSONResponse(_body(error_id, message), status_code=503)
    if isinstance(conn, Request):
        return reply
    if conn.client_state is WebSocketState.CONNECTING:
        if "websocket.http.response" in conn.scope.get("extensions", {}):
            return reply
        await conn.accept()
    if conn.client_state is WebSocketState.CONNECTED:
        await conn.close(code=1013, reason=message)
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the ``{error_id, message}`` shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_body(exc.error_id, exc.message, **exc.extra), status_code=exc.status,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(exc.errors())
        return JSONResponse(_body("invalid-request", "request validation failed", details=details), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error_id = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, f"http-{exc.status_code}")
        return JSONResponse(_body(error_id, str(exc.detail)), status_code=exc.status_code)

    async def _db_down(conn: Request | WebSocket, exc: Exception) -> JSONResponse | None:
        """503 ``database-unavailable`` while the database cannot be used (the node logs the outage
        once; here one info line per request). A WebSocket still in its handshake is refused with
        the same 503, one already open is closed with 1013 (try again later)."""
        if not database_unavailable(exc):
            raise exc  # a statement the database refused: a bug, answered 500 below
        log.info("request refused: database unavailable", extra={"path": conn.url.path, "error": type(exc).__name__})
        return await _unavailable(conn, "database-unavailable", "database unavailable")

    for failure in (DBAPIError, PendingRollbackError, PoolTimeout):
        app.add_exception_handler(failure, _db_down)  # type: ignore[arg-type]

    async def _redis_down(conn: Request | WebSocket, exc: Exception) -> JSONResponse | None:
        """503 ``redis-unavailable`` while Redis cannot be reached (cluster mode; the node's link logs
        the outage once), answered like a database outage (a WebSocket is closed with 1013)."""
        log.info("request refused: redis unavailable", extra={"path": conn.url.path, "error": type(exc).__name__})
        return await _unavailable(conn, "redis-unavailable", "redis unavailable")

    for down in REDIS_DOWN:
        app.add_exception_handler(down, _redis_down)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error in API")
        return JSONResponse(_body("internal-error", "internal error"), status_code=500)
