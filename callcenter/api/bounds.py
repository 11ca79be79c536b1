"""What the HTTP API accepts, defined once: ids, row offsets, names, call ids, times, and the size
and shape of request bodies. No request may reach the database or a serializer with a value that
makes it fail (a 5xx); it is answered 422 ``invalid-request`` naming the field, or 413.

Routes use the annotated types (``agent_id: DbId``, ``offset: Offset = 0``, ``since: Instant | None``);
``InputBounds`` (installed by ``create_app``) checks what no route declares: the body's size, JSON
that is too deep, too big, holds NaN/Infinity, NUL characters or unpaired surrogates, and
control characters in the path and query.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

from pydantic import AfterValidator, Field
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ivr.prompts import MAX_UPLOAD_BYTES

INT32_MAX = 2**31 - 1
"""Largest value of an ``Integer`` column: int4 on PostgreSQL (SQLite would take 64 bits)."""

DbId = Annotated[int, Field(ge=1, le=INT32_MAX, description="a row id")]
"""Id of a row (user, agent, trunk, form...) in a path, a query or a body."""
Offset = Annotated[int, Field(ge=0, le=INT32_MAX, description="rows to skip")]
Version = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""A stored version number (flows)."""
CallId = Annotated[str, Field(min_length=1, max_length=64, description="a call's id")]
Name = Annotated[str, Field(min_length=1, max_length=64)]
"""A name the tenant gave (queue, flow, calendar, prompt); the column holds 64 characters."""

EARLIEST = datetime(1970, 1, 2)
LATEST = datetime(9998, 12, 31)
"""Times outside these (a day inside Python's range) cannot be shifted by a time zone or a report's
look-back without overflowing."""


def check_instant(value: datetime) -> datetime:
    """``value`` if it lies between ``EARLIEST`` and ``LATEST`` (compared without its offset)."""
    if not EARLIEST <= value.replace(tzinfo=None) <= LATEST:
        raise ValueError(f"a time between {EARLIEST.year} and {LATEST.year}")
    return value


Instant = Annotated[datetime, AfterValidator(check_instant)]
"""A time in a query or body (ISO 8601; a route says what a missing offset means)."""


def as_db_id(text: str) -> int | None:
    """``text`` as a row id when it is one (ASCII digits within ``INT32_MAX``), else None."""
    if not text.isascii() or not text.isdigit() or len(text) > len(str(INT32_MAX)):
        return None
    value = int(text)
    return value if 1 <= value <= INT32_MAX else None


# -- bodies ------------------------------------------------------------------------------------
MAX_BODY_BYTES = 1024 * 1024
"""A request body other than an upload (JSON, a YAML flow)."""
MAX_UPLOAD_BODY_BYTES = MAX_UPLOAD_BYTES + 1024 * 1024
"""A ``multipart/form-data`` body (the largest prompt file plus room for the form's framing), or a
``text/csv`` one (a campaign's contact list)."""
MAX_JSON_DEPTH = 32
"""Nesting of arrays and objects; flows and QA forms need under 10."""
MAX_JSON_VALUES = 100_000
"""Values (objects, arrays, strings, numbers...) in one JSON document."""


class JsonBoundsError(ValueError):
    """A JSON document outside the bounds; ``loc`` is the path to the value at fault."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "NUL characters are not allowed"
    if any("\ud800" <= c <= "\udfff" for c in text):  # json.loads joins the pairs: these are lone halves
        return "unpaired surrogates are not allowed"
    return None


def check_json(document: Any, loc: tuple[str | int, ...] = ()) -> None:
    """Raise ``JsonBoundsError`` if ``document`` (parsed JSON or YAML) is deeper than
    ``MAX_JSON_DEPTH``, holds more than ``MAX_JSON_VALUES`` values (YAML aliases count each time
    they are used), a non-finite number, or a string (or key) with NUL or unpaired surrogates.
    Walks without recursion, so any depth is safe to check."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, loc)]
    seen = 0
    while stack:
        value, where = stack.pop()
        seen += 1
        if seen > MAX_JSON_VALUES:
            raise JsonBoundsError(loc, f"more than {MAX_JSON_VALUES} values")
        if len(where) - len(loc) > MAX_JSON_DEPTH:
            raise JsonBoundsError(where, f"nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                problem = _bad_text(key) if isinstance(key, str) else None
                if problem:
                    raise JsonBoundsError(where, f"a key: {problem}")
                stack.append((item, (*where, str(key))))
        elif isinstance(value, list):
            stack.extend((item, (*where, i)) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise JsonBoundsError(where, "NaN and Infinity are not JSON numbers")
        elif isinstance(value, str):
            problem = _bad_text(value)
            if problem:
                raise JsonBoundsError(where, problem)


def _url_problems(scope: Scope) -> Iterator[tuple[list[str | int], str]]:
    path = scope.get("path", "")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        yield ["path"], "control characters are not allowed in the path"
    query = scope.get("query_string", b"").decode("latin-1")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key + value):
            yield ["query", key], "control characters are not allowed"


def _error(status: int, error_id: str, message: str, loc: list[str | int] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error_id": error_id, "message": message}
    if loc is not None:
        body["details"] = [{"loc": loc, "msg": message}]
    return JSONResponse(body, status_code=status)


class InputBounds:
    """ASGI middleware: bodies over their size are 413 ``body-too-large``; JSON bodies outside
    ``check_json``'s bounds and URLs with control characters are 422 ``invalid-request``, with
    ``details[0].loc`` naming the value (``["body", "skills", "x"]``, ``["query", "q"]``).
    Everything else passes on untouched (malformed JSON is left to the route's own 422)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES, max_upload: int = MAX_UPLOAD_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for loc, message in _url_problems(scope):
            await _error(422, "invalid-request", message, loc)(scope, receive, send)
            return
        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "").lower()
        limit = self.max_upload if content_type.startswith(("multipart/", "text/csv")) else self.max_body
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self._too_large(limit)(scope, receive, send)
            return
        body = await _read_body(receive, limit)
        if body is None:
            await self._too_large(limit)(scope, receive, send)
            return
        if body and "json" in content_type.split(";")[0]:
            rejected = _check_json_body(body)
            if rejected is not None:
                await rejected(scope, receive, send)
                return
        await self.app(scope, _replay(body, receive), send)

    @staticmethod
    def _too_large(limit: int) -> JSONResponse:
        return _error(413, "body-too-large", f"the request body is larger than {limit} bytes")


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it grows past ``limit`` (the rest is not read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _check_json_body(body: bytes) -> JSONResponse | None:
    try:
        document = json.loads(body)  # NaN and Infinity parse, and check_json names where they are
    except RecursionError:
        return _error(422, "invalid-request", f"nested deeper than {MAX_JSON_DEPTH} levels", ["body"])
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # malformed: the route answers its usual 422
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return _error(422, "invalid-request", str(exc), ["body"])
    try:
        check_json(document, ("body",))
    except JsonBoundsError as exc:
        return _error(422, "invalid-request", exc.message, list(exc.loc))
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
