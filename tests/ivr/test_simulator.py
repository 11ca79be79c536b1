"""The flow simulator: the real engine and nodes on a simulated call, driven by typed input."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ivr.calendar import BusinessCalendar
from ivr.compiler import compile_flow
from ivr.lint import flow_warnings
from ivr.simulator import HttpMock, simulate

DEMO = json.loads((Path(__file__).parents[2] / "callcenter/data/demo-flow.json").read_text())
OFFICE = BusinessCalendar.model_validate({"timezone": "Asia/Shanghai", "weekly": {"mon": ["09:00-18:00"]}})
MONDAY_10 = datetime.fromisoformat("2026-12-07T10:00:00+08:00")
MONDAY_20 = datetime.fromisoformat("2026-12-07T20:00:00+08:00")
SMALL = {"name": "small", "start": "hours", "nodes": [
    {"id": "hours", "type": "business_hours", "calendar": "office", "open": "menu", "closed": "bye"},
    {"id": "menu", "type": "menu", "prompt": {"file": "welcome"},
     "options": [{"key": "1", "phrases": ["billing"], "next": "crm"}, {"key": "2", "next": "agent"}],
     "retries": 0, "no_input": "agent", "no_match": "agent"},
    {"id": "crm", "type": "http", "url": "https://crm.example.com/who", "map": {"tier": "customer.tier"},
     "next": "vip", "on_error": "agent"},
    {"id": "vip", "type": "condition", "branches": [{"when": "tier == 'gold'", "next": "gold"}], "default": "agent"},
    {"id": "gold", "type": "queue", "queue": "vip", "priority": 9},
    {"id": "agent", "type": "queue", "queue": "support"},
    {"id": "bye", "type": "hangup", "prompt": "We are closed."},
]}


async def run(document: dict[str, Any], keys: list[str] = (), speech: list[str] = (), at: datetime = MONDAY_10,
              calendar: str = "demo", http: dict[str, HttpMock] | None = None) -> dict[str, Any]:
    return await simulate(compile_flow(document), keys=list(keys), speech=list(speech), at=at,
                          calendars={calendar: OFFICE}, prompts=frozenset({"welcome"}), http=http or {},
                          queues={"sales": {"skill": "sales", "min_proficiency": 3}}, may_dial=lambda n: False, tenant_id=1)


async def test_a_key_takes_the_menu_option_to_its_queue() -> None:
    out = await run(DEMO, keys=["1"])
    assert out["path"] == ["greeting", "hours", "menu", "sales"] and out["error"] is None
    assert out["result"]["kind"] == "queue" and out["result"]["queue"] == "sales"
    assert out["result"]["skill"] == "sales" and out["result"]["min_proficiency"] == 3 and out["result"]["priority"] == 0
    greeting, hours, menu, _ = out["steps"]
    assert greeting["heard"] == [{"tts": "Welcome to the demo call center.", "voice": "en"}]
    assert hours["branch"] == "open" and menu["inputs"] == [{"key": "1"}] and menu["branch"] == "options.0.next"


async def test_speech_is_matched_against_the_phrases_once_keys_are_used_up() -> None:
    out = await run(DEMO, keys=[""], speech=["I need support please"])
    menu = out["steps"][2]
    assert [e["event"] for e in menu["events"]] == ["no_input", "recognition"]
    assert menu["inputs"] == [{"speech": "I need support please", "phrase": "support"}]
    assert out["result"]["text"] == "queue: support" and out["result"]["configured"] is False


async def test_closed_hours_take_the_voicemail_then_hang_up() -> None:
    out = await run(DEMO, keys=["1"], at=MONDAY_20)
    assert out["path"] == ["greeting", "hours", "closed", "bye"]
    assert out["steps"][1]["branch"] == "closed"
    assert {"tone": "beep"} in out["steps"][2]["heard"]
    assert out["result"]["kind"] == "voicemail" and out["unused"]["keys"] == ["1"]


async def test_a_menu_waiting_without_input_is_an_error_naming_it() -> None:
    out = await run(DEMO)
    assert out["path"] == ["greeting", "hours", "menu"] and out["result"] is None
    assert out["error"]["code"] == "needs-input" and out["error"]["node"] == "menu"


async def test_a_missing_calendar_is_reported() -> None:
    out = await run(DEMO, calendar="other")
    assert out["error"]["code"] == "missing-calendar" and out["error"]["node"] == "hours"
    assert out["path"][:3] == ["greeting", "hours", "closed"]


async def test_http_mocks_feed_the_mapping_and_errors_take_on_error() -> None:
    gold = await run(SMALL, keys=["1"], calendar="office",
                     http={"crm": HttpMock(200, {"customer": {"tier": "gold"}})})
    assert gold["path"] == ["hours", "menu", "crm", "vip", "gold"]
    assert gold["steps"][1]["heard"] == [{"file": "welcome"}]
    assert gold["result"]["queue"] == "vip" and gold["result"]["priority"] == 9
    assert gold["result"]["variables"]["tier"] == "gold"
    failed = await run(SMALL, speech=["billing"], calendar="office", http={"crm": HttpMock(503, None)})
    assert failed["path"] == ["hours", "menu", "crm", "agent"] and failed["steps"][2]["branch"] == "on_error"
    unmocked = await run(SMALL, keys=["1"], calendar="office")
    assert unmocked["steps"][2]["events"][0]["reason"] == "connection"


async def test_a_prompt_not_uploaded_stops_the_run() -> None:
    out = await run({**SMALL, "nodes": [{**n, "prompt": {"file": "gone"}} if n["id"] == "menu" else n
                                        for n in SMALL["nodes"]]}, keys=["1"], calendar="office")
    assert out["error"]["code"] == "missing-prompt" and out["error"]["node"] == "menu" and out["result"] is None


async def test_a_loop_is_stopped() -> None:
    loop = {"name": "loop", "start": "a", "nodes": [{"id": "a", "type": "goto", "target": "b"},
                                                    {"id": "b", "type": "goto", "target": "a"}]}
    out = await run(loop)
    assert out["error"]["code"] == "loop" and len(out["path"]) == 1000


def test_warnings_name_unreachable_nodes_and_unhandled_branches() -> None:
    doc = {**SMALL, "nodes": [*SMALL["nodes"], {"id": "orphan", "type": "hangup"}]}
    doc["nodes"][1] = {**doc["nodes"][1], "no_input": None}
    warnings = {(w["node"], w["field"], w["code"]) for w in flow_warnings(compile_flow(doc))}
    assert warnings == {("menu", "no_input", "unhandled"), ("orphan", "", "unreachable")}
    assert flow_warnings(compile_flow(DEMO)) == []
