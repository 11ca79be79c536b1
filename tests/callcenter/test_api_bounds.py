"""Bounds on every input of the HTTP API (issue 17). Most requests here answered 500 before (or
would on PostgreSQL: int4 ids, NUL in text, negative LIMIT); now they are 422 ``invalid-request``
naming the value, 413, 416 or a plain answer. Every integer, string and list the OpenAPI declares
has a bound, so that schemathesis (tests/callcenter/test_api_fuzz.py) probes just past each one;
the WebSockets outlive malformed messages.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session
from websockets.asyncio.client import connect

from callcenter.api import AppContext, create_app
from callcenter.api.bounds import INT32_MAX, MAX_BODY_BYTES, MAX_JSON_DEPTH, MAX_UPLOAD_BODY_BYTES
from callcenter.db import make_engine
from callcenter.models import CallRecord
from callcenter.settings import Settings
from sip_bridge.tones import sine
from tests.support.node import NodeProcess
from tests.support.recordings import make_recorded_call

from .conftest import World


def _invalid(reply: Any, *loc: str | int) -> None:
    """422 invalid-request whose details name ``loc``."""
    assert reply.status_code == 422, reply.text
    body = reply.json()
    assert body["error_id"] == "invalid-request"
    assert any(d["loc"][:len(loc)] == list(loc) for d in body["details"]), body


# -- ids and offsets -----------------------------------------------------------------------------


def test_agent_id_beyond_64_bits_is_a_422_not_a_500(world: World) -> None:
    admin = world.login("admin")
    reply = world.client.patch(f"/api/agents/{2**64 + 1}", json={"skills": {"sales": 3}}, headers=admin)
    _invalid(reply, "path", "agent_id")


@pytest.mark.parametrize("path", ["/api/trunks/{}", "/api/users/{}", "/api/numbers/{}", "/api/qa/forms/{}",
                                  "/api/qa/evaluations/{}"])
def test_ids_past_a_postgresql_integer_are_422_and_the_largest_is_a_404(world: World, path: str) -> None:
    admin = world.login("admin")
    _invalid(world.client.get(path.format(INT32_MAX + 1), headers=admin), "path")
    _invalid(world.client.get(path.format(0), headers=admin), "path")
    assert world.client.get(path.format(INT32_MAX), headers=admin).status_code == 404


def test_a_qa_evaluation_with_a_form_id_beyond_64_bits_is_a_422(world: World) -> None:
    call_id = _call(world)
    reply = world.client.post(f"/api/qa/calls/{call_id}/evaluations", json={"form_id": 2**70, "answers": {}},
                              headers=world.login("qa"))
    _invalid(reply, "body", "form_id")


def test_agent_history_with_a_negative_limit_is_a_422(world: World) -> None:
    # SQLite reads LIMIT -1 as "no limit"; PostgreSQL refuses it
    admin = world.login("admin")
    agent = world.client.post("/api/agents", json={"username": "ann", "skills": {"sales": 3}}, headers=admin).json()
    _invalid(world.client.get(f"/api/agents/{agent['id']}/history?limit=-1", headers=admin), "query", "limit")


@pytest.mark.parametrize("path", ["/api/calls/search", "/api/qa/calls"])
def test_an_offset_beyond_32_bits_is_a_422(world: World, path: str) -> None:
    _invalid(world.client.get(f"{path}?offset={2**63}", headers=world.login("admin")), "query", "offset")


@pytest.mark.parametrize("agent", ["99999999999999999999999", "²", "٣"])
def test_an_agent_filter_that_is_no_agent_id_matches_nothing(world: World, agent: str) -> None:
    # "²".isdigit() is true but int("²") raises; a 23-digit id overflows SQLite's integers
    admin = world.login("admin")
    _call(world)
    reply = world.client.get("/api/calls/search", params={"agent": agent}, headers=admin)
    assert reply.status_code == 200 and reply.json() == []
    reply = world.client.get("/api/qa/calls", params={"agent": agent}, headers=admin)
    assert reply.status_code == 200 and reply.json()["total"] == 0


# -- times -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/calls?since={}", "/api/calls/search?until={}",
                                  "/api/reports/intervals?since={}", "/api/qa/reports?since={}"])
@pytest.mark.parametrize("time", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00"])
def test_times_at_the_ends_of_the_calendar_are_422_not_an_overflow(world: World, path: str, time: str) -> None:
    reply = world.client.get(path.format(time.replace("+", "%2B")), headers=world.login("admin"))
    assert reply.status_code == 422, reply.text
    assert reply.json()["error_id"] == "invalid-request"


# -- JSON bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "loc"), [
    ('{"description": "a\\u0000b"}', ["body", "description"]),  # PostgreSQL text holds no NUL
    ('{"description": "a\\ud800b"}', ["body", "description"]),  # cannot be encoded as UTF-8 for the database
    ('{"description": NaN}', ["body", "description"]),  # not JSON, but Python's parser takes it
    ('{"description": "x", "extra": [1, -Infinity]}', ["body", "extra", 1]),
])
def test_json_the_database_or_the_response_cannot_hold_is_422_naming_the_value(world: World, raw: str,
                                                                                loc: list[Any]) -> None:
    admin = world.login("admin")
    number = world.client.post("/api/numbers", json={"number": "4001234567"}, headers=admin).json()
    reply = world.client.patch(f"/api/numbers/{number['id']}", content=raw.encode(),
                               headers={**admin, "content-type": "application/json"})
    _invalid(reply, *loc)


def test_a_nan_answer_to_a_scale_question_is_a_422_not_a_500(world: World) -> None:
    call_id = _call(world)
    qa_user = world.login("qa")
    form = world.client.get("/api/qa/forms", headers=qa_user).json()[0]
    raw = json.dumps({"form_id": form["id"], "answers": {"x": {"value": float("nan")}}})
    reply = world.client.post(f"/api/qa/calls/{call_id}/evaluations", content=raw.encode(),
                              headers={**qa_user, "content-type": "application/json"})
    _invalid(reply, "body", "answers", "x", "value")


def test_json_nested_deeper_than_the_bound_is_422(world: World) -> None:
    deep = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)
    reply = world.client.put("/api/calendars/main", content=f'{{"timezone": "UTC", "x": {deep}}}'.encode(),
                             headers={**world.login("admin"), "content-type": "application/json"})
    _invalid(reply, "body", "x")
    very_deep = "[" * 100_000 + "]" * 100_000  # deeper than Python's own parser goes
    reply = world.client.put("/api/calendars/main", content=very_deep.encode(),
                             headers={**world.login("admin"), "content-type": "application/json"})
    _invalid(reply, "body")


def test_a_body_over_a_megabyte_is_413_whether_or_not_its_length_is_announced(world: World) -> None:
    admin = world.login("admin")
    big = b'{"description": "' + b"x" * MAX_BODY_BYTES + b'"}'
    reply = world.client.post("/api/numbers", content=big, headers={**admin, "content-type": "application/json"})
    assert reply.status_code == 413 and reply.json()["error_id"] == "body-too-large"
    chunked = world.client.post("/api/numbers", content=iter([big[:1000], big[1000:]]),
                                headers={**admin, "content-type": "application/json"})
    assert chunked.status_code == 413 and chunked.json()["error_id"] == "body-too-large"


def test_an_oversize_prompt_upload_is_413_and_a_bad_one_422(world: World) -> None:
    admin = world.login("admin")
    huge = b"\0" * (MAX_UPLOAD_BODY_BYTES + 1)
    reply = world.client.put("/api/prompts/welcome", files={"file": ("welcome.wav", huge, "audio/wav")},
                             headers=admin)
    assert reply.status_code == 413 and reply.json()["error_id"] == "body-too-large"
    reply = world.client.put("/api/prompts/welcome", files={"file": ("welcome.wav", b"RIFF not audio", "audio/wav")},
                             headers=admin)
    assert reply.status_code == 422
    reply = world.client.put("/api/prompts/welcome", content=b"--x\r\nnot a form", headers={
        **admin, "content-type": "multipart/form-data; boundary=x"})
    assert reply.status_code < 500, reply.text


@pytest.mark.parametrize(("url", "loc"), [("/api/audit?action=%00", ["query", "action"]),
                                         ("/api/audit?target=a%1Fb", ["query", "target"]),
                                         ("/api/audit?limit=1&x%7F=1", ["query", "x\x7f"]),
                                         ("/api/flows/a%00b", ["path"])])
def test_control_characters_in_the_url_are_422_naming_where(world: World, url: str, loc: list[str]) -> None:
    _invalid(world.client.get(url, headers=world.login("admin")), *loc)


# -- flows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("content_type", "document"), [
    ("text/plain", "[" * 100_000),  # JSON, deeper than Python's parser goes
    ("application/yaml", "- " * 5_000 + "x"),  # YAML block nesting
    ("application/yaml", "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                         + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                                   for p, c in zip("abcdefgh", "bcdefghi"))),  # a billion laughs
])
def test_a_flow_too_deep_or_too_big_once_expanded_is_an_invalid_flow(world: World, content_type: str,
                                                                     document: str) -> None:
    reply = world.client.post("/api/flows/validate", content=document.encode(),
                              headers={**world.login("admin"), "content-type": content_type})
    assert reply.status_code == 422, reply.text
    assert reply.json()["error_id"] == "invalid-flow"


# -- recordings: Range -----------------------------------------------------------------------


@pytest.mark.parametrize(("range_", "status"), [
    ("bytes=0-0", 206),
    ("bytes=-99999999999999999999999", 206),  # the last N bytes, N past the size: all of it
    ("bytes=99999999999999999999999-", 416),
    ("bytes=0-99999999999999999999999", 206),
    ("bytes=5-2", 416),
    ("bytes=-0", 416),
    ("bytes=0-1,4-5", 416),
    ("items=0-1", 416),
    ("bytes=", 416),
    ("bytes=" + "9" * 5000 + "-", 422),  # longer than any real Range header: no 5000-digit int()
])
def test_range_header_edge_cases_are_answered_without_a_server_error(world: World, data_dir: Path, range_: str,
                                                                    status: int) -> None:
    call = make_recorded_call(world.engine, data_dir, world.tenant_a, caller_pcm=sine(1000, 1.0, amplitude=0.3),
                              agent_pcm=sine(600, 1.0, amplitude=0.3), words=[], evaluate=False)
    reply = world.client.get(f"/api/calls/{call.call_id}/recording/audio", headers={
        **world.login("qa"), "range": range_})
    assert reply.status_code == status, reply.text


# -- the schema itself -----------------------------------------------------------------------


def _unbounded(schema: dict[str, Any], where: str, components: dict[str, Any], seen: frozenset[str]) -> list[str]:
    """Places in ``schema`` a value of any size could come through."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return [] if name in seen else _unbounded(components[name], where, components, seen | {name})
    found = [p for key in ("anyOf", "oneOf", "allOf") for sub in schema.get(key, [])
             for p in _unbounded(sub, where, components, seen)]
    kind = schema.get("type")
    has = set(schema)
    if kind == "integer" and not ({"maximum", "exclusiveMaximum"} & has and {"minimum", "exclusiveMinimum"} & has):
        found.append(f"{where}: an integer without minimum and maximum")
    if kind == "number" and not {"maximum", "exclusiveMaximum"} & has:
        found.append(f"{where}: a number without maximum")
    if kind == "string" and not {"maxLength", "enum", "const", "pattern", "format", "contentMediaType"} & has:
        found.append(f"{where}: a string without maxLength")
    if kind == "array":
        if "maxItems" not in has:
            found.append(f"{where}: an array without maxItems")
        found += _unbounded(schema.get("items", {}), f"{where}[]", components, seen)
    for name, sub in schema.get("properties", {}).items():
        found += _unbounded(sub, f"{where}.{name}", components, seen)
    if isinstance(schema.get("additionalProperties"), dict):
        found += _unbounded(schema["additionalProperties"], f"{where}.*", components, seen)
    return found


def test_every_integer_string_and_list_the_api_takes_has_a_bound() -> None:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/schema.db")
        spec = create_app(AppContext(settings=Settings(data_dir=Path(folder)), engine=engine)).openapi()
        engine.dispose()
    components = spec.get("components", {}).get("schemas", {})
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                found += _unbounded(parameter.get("schema", {}), f"{label} {parameter['in']} {parameter['name']}",
                                    components, frozenset())
            for media in operation.get("requestBody", {}).get("content", {}).values():
                found += _unbounded(media.get("schema", {}), f"{label} body", components, frozenset())
    assert found == []


# -- WebSocket -------------------------------------------------------------------------------


def test_a_wallboard_socket_lives_on_after_malformed_messages(world: World) -> None:
    supervisor = world.login("supervisor")
    with world.client.websocket_connect("/api/supervisor/ws",
                                        headers={**supervisor, "origin": "http://testserver"}) as ws:
        assert ws.receive_json()["type"] == "hello"
        for junk in ["[" * 100_000, "not json", "[1, 2]", '{"type": 5}', '{"type": "monitor", "call_id": []}',
                     '"\\ud800"', "NaN"]:
            ws.send_text(junk)
        ws.send_text(json.dumps({"type": "ping", "t": 7}))
        while (message := ws.receive_json())["type"] != "pong":
            assert message["type"] in ("snapshot", "error"), message
        assert message["t"] == 7


async def test_a_softphone_socket_lives_on_after_a_message_nested_too_deep(module_node: NodeProcess) -> None:
    # json.loads raises RecursionError, a RuntimeError: it used to end the socket like a disconnect
    reply = httpx.post(f"{module_node.http}/api/login", json={"tenant": "demo", "username": "agent1",
                                                              "password": module_node.agents["agent1"][0]})
    url = module_node.http.replace("http", "ws", 1) + "/api/agent/ws"
    async with connect(url, additional_headers={"Authorization": f"Bearer {reply.json()['token']}"}) as ws:
        await ws.send("[" * 100_000)
        await ws.send(json.dumps({"type": "ping", "t": 3}))
        seen: list[str] = []
        while (message := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "pong":
            seen.append(message["type"])
        assert "error" in seen and message["t"] == 3


# -- helpers ---------------------------------------------------------------------------------


def _call(world: World) -> str:
    """A finished call of tenant A (no recording)."""
    call_id = str(uuid.uuid4())
    now = datetime.now(timezone.utc)
    with Session(world.engine) as db:
        db.add(CallRecord(id=call_id, sip_call_id=f"{call_id}@t", tenant_id=world.tenant_a, direction="inbound",
                          caller="13800138000", dialed="4001234567", received_at=now, answered_at=now,
                          ended_at=now, queue="sales"))
        db.commit()
    return call_id
