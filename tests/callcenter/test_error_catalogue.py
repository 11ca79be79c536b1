"""Every error the API and the sockets answer with has words in both languages (issue 18, languages):
the error ids raised in callcenter/api (and the domain errors it passes on) have a
``shell.error.<error_id>`` entry, the softphone's and the wallboard's socket errors an
``agent.error.<id>`` / ``supervisor.error.<id>`` one, and the validation types the console meets
a ``shell.validation.<type>`` one. Static scans of the source, no server."""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field, field_validator

from callcenter.api.errors import install_error_handlers
from callcenter.api.tenants import validate_prefixes
from callcenter.outbound import DIAL_FAILURES

ROOT = Path(__file__).resolve().parents[2]
I18N = ROOT / "callcenter" / "web" / "i18n"
LANGS = ("en", "zh-CN")

#: Where API errors are raised: the routers, and the domain modules whose errors they pass on as they are.
API_SOURCES = [*sorted((ROOT / "callcenter" / "api").glob("*.py")), ROOT / "callcenter" / "tenancy.py",
               ROOT / "callcenter" / "qa.py"]
#: Ids the framework handlers answer (errors.py maps Starlette's 404/405 to them).
FRAMEWORK_IDS = {"not-found", "method-not-allowed", "internal-error"}
#: Ids no page ever shows, and why.
NEVER_ON_A_PAGE = {
    "file-not-found": "a static file or page asset; the browser fetches it, no page shows the JSON",
    "not-authenticated": "401: the shell shows the sign-in form instead of a message",
    "invalid-credentials": "the sign-in form says shell.login.wrong for every 401",
}

#: call name -> how it names its error id: ("arg", i) the i-th argument, ("kind", i) the i-th
#: argument + "-not-found", ("fixed", id).
RAISERS = {
    "ApiError": ("arg", 1), "TenancyError": ("arg", 1), "_error": ("arg", 1), "_unavailable": ("arg", 1),
    "conflict": ("arg", 0), "_body": ("arg", 0),
    "not_found": ("kind", 0), "get_owned": ("kind", 4),
    "forbidden": ("fixed", "forbidden"), "invalid": ("fixed", "invalid-request"),
    "not_authenticated": ("fixed", "not-authenticated"),
}


def _strings(node: ast.AST) -> Iterator[str]:
    """The string constants an argument can be (``"queue" if x else "call"`` is both)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body)
        yield from _strings(node.orelse)


def _name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _raised(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Dict):  # {"error_id": "database-unavailable", ...}
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "error_id":
                    yield from _strings(value)
        if not isinstance(node, ast.Call):
            continue
        name = _name(node)
        if name == "QaError":  # QaError(message, error_id="invalid-request", status=422)
            given = [kw.value for kw in node.keywords if kw.arg == "error_id"] + node.args[1:2]
            yield from (_strings(given[0]) if given else ["invalid-request"])
            continue
        if name not in RAISERS:
            continue
        how, where = RAISERS[name]
        if how == "fixed":
            yield str(where)
        elif len(node.args) > int(where):
            found = list(_strings(node.args[int(where)]))
            yield from (f"{s}-not-found" for s in found) if how == "kind" else found


def api_error_ids() -> set[str]:
    return {error_id for path in API_SOURCES for error_id in _raised(path)} | FRAMEWORK_IDS


def catalogue(lang: str, ns: str) -> dict[str, str]:
    return json.loads((I18N / lang / f"{ns}.json").read_text(encoding="utf-8"))


def test_every_api_error_id_has_words_in_both_languages() -> None:
    ids = api_error_ids()
    assert {"forbidden", "queue-not-found", "username-taken", "tenant-suspended", "invalid-form",
            "body-too-large", "database-unavailable", "tenant-slug-taken"} <= ids  # the scan finds them
    assert set(NEVER_ON_A_PAGE) <= ids, "an exception for an id nobody raises any more"
    for lang in LANGS:
        shell = catalogue(lang, "shell")
        missing = sorted(i for i in ids - set(NEVER_ON_A_PAGE) if f"shell.error.{i}" not in shell)
        assert not missing, f"{lang}/shell.json has no shell.error.<id> for: {missing}"


def _socket_error_ids(path: Path, exception: str, default: str) -> set[str]:
    """The ids a module's ``exception(message, "id")`` raises, the default, and {"error_id": "..."} literals."""
    ids = {default}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and _name(node) == exception and len(node.args) > 1:
            ids.update(_strings(node.args[1]))
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and key.value == "error_id":
                    ids.update(_strings(value))
    return ids


def test_every_socket_error_id_has_words_in_both_languages() -> None:
    cc = ROOT / "callcenter"
    agent = (_socket_error_ids(cc / "softphone.py", "RequestError", "refused")
             | _socket_error_ids(cc / "call_control.py", "TransferError", "transfer-failed")
             | _socket_error_ids(cc / "acd_service.py", "TransferError", "transfer-failed")
             | _socket_error_ids(cc / "outbound.py", "OutboundRefused", "dial-failed")
             | _socket_error_ids(cc / "acd_service.py", "OutboundRefused", "dial-failed")
             | _socket_error_ids(cc / "softphone.py", "OutboundRefused", "dial-failed")
             | set(DIAL_FAILURES.values()))
    supervisor = (_socket_error_ids(cc / "monitoring.py", "MonitorError", "monitor-failed")
                  | _socket_error_ids(cc / "api" / "supervisor.py", "MonitorError", "monitor-failed"))
    assert {"no-call", "not-ringing", "no-answer", "no-such-queue", "bad-message", "dial-busy", "no-trunk",
            "dial-callee-busy"} <= agent
    assert {"call-not-found", "already-monitored", "database-unavailable"} <= supervisor
    for lang in LANGS:
        for ns, ids in (("agent", agent), ("supervisor", supervisor)):
            messages = catalogue(lang, ns)
            missing = sorted(i for i in ids if f"{ns}.error.{i}" not in messages)
            assert not missing, f"{lang}/{ns}.json has no {ns}.error.<id> for: {missing}"


#: The pydantic error types a console form meets (numbers, queues, agents, users, calendars, trunks,
#: flows) and the codes of our own validators (ivr/calendar.py, ivr/schema.py, api/tenants.py, api/trunks.py).
VALIDATION_TYPES = {
    "missing", "string_type", "string_too_short", "string_too_long", "string_pattern_mismatch", "int_type",
    "int_parsing", "int_from_float", "float_parsing", "bool_parsing", "greater_than", "greater_than_equal",
    "less_than", "less_than_equal", "value_error", "enum", "literal_error", "too_short", "too_long",
    "list_type", "dict_type", "extra_forbidden", "date_from_datetime_parsing", "date_parsing",
    "datetime_parsing", "json_invalid", "model_attributes_type", "server",
    "time_range", "time_range_24", "time_range_equal", "time_zone", "dial_prefix", "host_name", "ip_network",
    "prompt_source", "option_input", "option_key_twice", "min_above_max", "gather_input",
}
#: The ctx values each type's message may name (pydantic's names).
CTX = {"string_too_short": {"min_length"}, "string_too_long": {"max_length"}, "too_short": {"min_length"},
       "too_long": {"max_length"}, "greater_than": {"gt"}, "greater_than_equal": {"ge"}, "less_than": {"lt"},
       "less_than_equal": {"le"}, "enum": {"expected"}, "literal_error": {"expected"}, "server": {"message"},
       "value_error": {"message"},
       "time_range": {"value"}, "time_range_24": {"value"}, "time_range_equal": {"value"}, "time_zone": {"value"},
       "dial_prefix": {"value"}, "host_name": {"value"}, "ip_network": {"value"}, "option_key_twice": {"key"},
       "min_above_max": {"min", "max"}}


def _our_codes() -> set[str]:
    """The error types our validators give with ``PydanticCustomError("code", ...)`` (callcenter, ivr)."""
    codes = set()
    for path in [*(ROOT / "callcenter").rglob("*.py"), *(ROOT / "ivr").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and _name(node) == "PydanticCustomError" and node.args:
                codes.update(_strings(node.args[0]))
    return codes


def test_validation_types_have_words_with_their_values() -> None:
    codes = _our_codes() | {"time_range", "time_range_24", "time_range_equal"}  # ivr/calendar.py's _bad_range
    assert {"dial_prefix", "time_zone", "option_key_twice"} <= codes
    assert codes <= VALIDATION_TYPES, f"codes without words: {sorted(codes - VALIDATION_TYPES)}"
    for lang in LANGS:
        shell = catalogue(lang, "shell")
        for kind in sorted(VALIDATION_TYPES):
            key = f"shell.validation.{kind}"
            assert key in shell, f"{lang}: no {key}"
            assert set(re.findall(r"\{(\w+)\}", shell[key])) <= CTX.get(kind, set()), f"{lang} {key}: unknown placeholder"
            assert set(re.findall(r"\{(\w+)\}", shell[key])) == CTX.get(kind, set()) or kind not in CTX, \
                f"{lang} {key} does not name {CTX[kind]}"



class _Body(BaseModel):
    name: str = Field(max_length=3)
    size: int = Field(ge=1)
    prefixes: list[str] = []

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        return validate_prefixes(value)


def test_a_422_carries_the_type_and_values_the_page_translates() -> None:
    """FastAPI's validation errors go out with pydantic's ``type`` and plain ``ctx`` values, our
    validators' own codes included (``dial_prefix``), so the shell can word them."""
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/x")
    def _x(body: _Body) -> None: ...

    client = TestClient(app)
    details = client.post("/x", json={"name": "toolong", "size": 0}).json()["details"]
    assert [(d["loc"], d["type"], d.get("ctx")) for d in details] == [
        (["body", "name"], "string_too_long", {"max_length": 3}), (["body", "size"], "greater_than_equal", {"ge": 1})]
    reply = client.post("/x", json={"name": "a", "size": 1, "prefixes": ["9x"]}).json()
    assert reply["details"][0]["type"] == "dial_prefix" and reply["details"][0]["ctx"] == {"value": "9x"}
    assert reply["details"][0]["msg"] == "invalid dial prefix '9x'"  # the English stays for API users
