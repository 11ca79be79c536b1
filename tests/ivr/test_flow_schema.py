"""Flow documents: good fixtures compile; each bad fixture is refused with its exact error
(node, field, reason and line), as ``callcenter flows validate`` prints it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ivr.compiler import check_tenant, compile_flow, load_document
from ivr.errors import FlowValidationError
from ivr.nodes import TenantFacts

FLOWS = Path(__file__).parent / "flows"
EXPECTED = json.loads((FLOWS / "bad" / "expected.json").read_text("utf-8"))
GOOD = sorted((FLOWS / "good").iterdir())


def compile_file(path: Path):  # type: ignore[no-untyped-def]
    text = path.read_text("utf-8")
    return compile_flow(load_document(text, path.name), source_text=text)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_flows_compile(path: Path) -> None:
    flow = compile_file(path)
    assert flow.nodes and flow.starts["main"] in flow.nodes


def test_every_bad_fixture_has_its_expected_error() -> None:
    fixtures = {p.name for p in (FLOWS / "bad").iterdir() if p.name != "expected.json"}
    assert fixtures == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_flow_is_refused_with_its_exact_error(name: str) -> None:
    with pytest.raises(FlowValidationError) as caught:
        compile_file(FLOWS / "bad" / name)
    assert [str(issue) for issue in caught.value.issues] == EXPECTED[name]


def test_cli_validate_prints_the_error_and_fails() -> None:
    bad = FLOWS / "bad" / "unknown-target.yaml"
    out = subprocess.run([sys.executable, "-m", "callcenter", "flows", "validate", str(bad)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    assert f"{bad}: {EXPECTED['unknown-target.yaml'][0]}" in out.stderr
    good = subprocess.run([sys.executable, "-m", "callcenter", "flows", "validate", str(FLOWS / "good" / "demo.json")],
                          capture_output=True, text=True)
    assert good.returncode == 0 and "is valid (7 nodes)" in good.stdout


def test_tenant_preconditions_name_each_missing_thing() -> None:
    flow = compile_file(FLOWS / "good" / "every-node.yaml")
    issues = [str(i) for i in check_tenant(flow, TenantFacts(), source_text=(FLOWS / "good" / "every-node.yaml")
                                           .read_text("utf-8"))]
    assert issues == [
        "line 8: node 'lookup' field 'url': host 'crm.example.com' is not on the tenant's HTTP allow-list",
        "line 15: node 'hours' field 'calendar': no business calendar named 'main' in this tenant",
        "line 61: node 'after_hours' field 'prompt.file': no uploaded prompt named 'closed-message' in this tenant",
        "line 68: node 'to_branch' field 'number': 01012345678 is not allowed by the tenant's outbound dialing rules",
    ]
    facts = TenantFacts(prompts=frozenset({"closed-message"}), calendars=frozenset({"main"}),
                        http_hosts=("*.example.com",), may_dial=lambda number: number.startswith("010"))
    assert check_tenant(flow, facts) == []


def test_yaml_and_json_give_the_same_flow() -> None:
    demo = compile_file(FLOWS / "good" / "demo.json")
    import yaml

    as_yaml = yaml.safe_dump(json.loads((FLOWS / "good" / "demo.json").read_text("utf-8")), allow_unicode=True)
    assert compile_flow(load_document(as_yaml, "demo.yaml")).as_json() == demo.as_json()
