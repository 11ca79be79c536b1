"""The survey node through the flow simulator (the engine's own driver and nodes): a rating by key or by
the number said, retries, the branches, and a survey the platform hands the caller on to after the agent."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ivr.compiler import compile_flow
from ivr.lint import flow_warnings
from ivr.runtime import FlowRun, FollowUp
from ivr.simulator import Simulation, simulate

SURVEY = json.loads((Path(__file__).parents[2] / "callcenter/data/demo-survey.json").read_text("utf-8"))
AT = datetime.fromisoformat("2026-12-07T10:00:00+08:00")
ENGLISH = {"name": "rate", "voice": "en", "start": "ask", "nodes": [
    {"id": "ask", "type": "survey", "prompt": "Rate us from one to five.", "variable": "score", "retries": 0,
     "next": "done", "no_match": "done"},
    {"id": "done", "type": "play", "prompt": "Score {score}."}]}


def _sim(document: dict[str, Any], keys: list[str] = (), speech: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    return {"keys": list(keys), "speech": list(speech), "at": AT, "calendars": {}, "prompts": frozenset(),
            "http": {}, "queues": {}, "may_dial": lambda number: False, "tenant_id": 1}


async def test_a_key_rates_and_goes_on_to_next() -> None:
    out = await simulate(compile_flow(SURVEY), **_sim(SURVEY, keys=["5"]))
    assert out["path"] == ["rate", "thanks"] and out["error"] is None
    assert out["result"]["rating"] == 5 and out["result"]["kind"] == "hangup"
    rate = out["steps"][0]
    assert rate["heard"] == [{"tts": SURVEY["nodes"][0]["prompt"], "voice": "zh"}]
    assert rate["inputs"] == [{"key": "5"}] and rate["branch"] == "next"
    assert {"event": "rating", "rating": 5, "stored": False} in rate["events"]  # a simulation stores nothing


async def test_the_number_said_rates_in_chinese_and_english() -> None:
    out = await simulate(compile_flow(SURVEY), **_sim(SURVEY, speech=["嗯 五分"]))
    assert out["result"]["rating"] == 5 and out["steps"][0]["inputs"] == [{"speech": "嗯 五分", "phrase": "五分"}]
    out = await simulate(compile_flow(SURVEY), **_sim(SURVEY, speech=["两 分"]))
    assert out["result"]["rating"] == 2
    out = await simulate(compile_flow(ENGLISH), **_sim(ENGLISH, speech=["four I guess"]))
    assert out["result"]["rating"] == 4 and out["path"] == ["ask", "done"]


async def test_a_wrong_answer_is_asked_again_then_the_branches_are_taken() -> None:
    out = await simulate(compile_flow(SURVEY), **_sim(SURVEY, keys=["9", "3"]))
    rate = out["steps"][0]
    assert [e["event"] for e in rate["events"]] == ["dtmf", "no_match", "dtmf", "rating"]
    assert {"tts": "抱歉，请按1到5之间的数字。", "voice": "zh"} in rate["heard"] and out["result"]["rating"] == 3
    out = await simulate(compile_flow(SURVEY), **_sim(SURVEY, keys=["", ""]))
    assert out["path"] == ["rate", "bye"] and "rating" not in out["result"]
    out = await simulate(compile_flow(ENGLISH), **_sim(ENGLISH, keys=["0"]))
    assert out["path"] == ["ask", "done"] and out["steps"][0]["branch"] == "no_match"


def test_lint_names_the_unhandled_survey_branches() -> None:
    warnings = flow_warnings(compile_flow(ENGLISH))
    assert [(w["node"], w["field"]) for w in warnings] == [("ask", "no_input")]


class AgentHangsUp(Simulation):
    """An agent answers at the queue node and hangs up: the caller is handed on to the survey."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rated_with: dict[str, Any] = {}

    async def enqueue(self, run: FlowRun, queue: str, priority: int, variables: dict[str, Any]) -> str | None:
        run.hand_on(FollowUp(compile_flow(SURVEY), {"contact_id": "c-1", "agent_id": "7", "queue": queue}))
        return None

    async def rate(self, run: FlowRun, rating: int) -> bool:
        self.rated_with = {k: run.variables.get(k) for k in ("contact_id", "agent_id", "queue", "rating")}
        return await super().rate(run, rating)


async def test_the_survey_follows_the_queue_in_the_same_trace_and_ends_the_call() -> None:
    main = {"name": "main", "start": "menu", "nodes": [
        {"id": "menu", "type": "subflow", "subflow": "pick", "next": "never"},
        {"id": "never", "type": "play", "prompt": "Not after the survey."}],
        "subflows": {"pick": {"start": "q", "nodes": [{"id": "q", "type": "queue", "queue": "sales"}]}}}
    sim = AgentHangsUp(compile_flow(main), **_sim(main, keys=["4"]))
    await sim.run()
    out = sim.report()
    assert out["path"] == ["menu", "q", "rate", "thanks"]
    assert sim.rated_with == {"contact_id": "c-1", "agent_id": "7", "queue": "sales", "rating": 4}
    assert out["result"]["text"] == "queue: sales"  # the IVR's outcome stays the queue (reports read it)
    assert {"event": "follow_up", "flow": "demo-survey"} in out["steps"][1]["events"]
    assert sim.call.ended and sim.call.hangup_side == "platform"
