"""Warnings about a valid flow: nodes no path reaches, and outcomes that end the call by default.

Not errors (a flow with them runs and may be published): the console shows them beside the
node so that an unfinished branch is a choice, not an oversight.
"""

from __future__ import annotations

from ivr.compiler import MAIN, CompiledFlow
from ivr.errors import FlowIssue

UNHANDLED = {
    "menu": {"no_input": "after the last silent attempt the caller is hung up",
             "no_match": "after the last wrong answer the caller is hung up"},
    "gather": {"no_input": "after the last silent attempt the caller is hung up",
               "no_match": "after the last unusable answer the caller is hung up"},
    "survey": {"no_input": "after the last silent attempt the caller is hung up, without a rating",
               "no_match": "after the last answer that is no rating the caller is hung up"},
    "transfer": {"on_failure": "when the number does not answer the caller is hung up"},
    "http": {"on_error": "when the request fails the flow goes on at 'next' without the data"},
    "condition": {"default": "when no branch matches the section ends"},
}
"""Node type -> optional branch -> what happens without it."""


def _reachable(flow: CompiledFlow) -> set[str]:
    seen: set[str] = set()
    todo = [flow.starts[MAIN]]
    while todo:
        node_id = todo.pop()
        if node_id in seen or node_id not in flow.nodes:
            continue
        seen.add(node_id)
        node = flow.nodes[node_id]
        todo.extend(t for t in node.references().values() if t is not None)
        sub = node.subflow()
        if sub is not None and sub in flow.starts:
            todo.append(flow.starts[sub])
    return seen


def flow_warnings(flow: CompiledFlow) -> list[dict[str, str | None]]:
    """Unreachable nodes and unhandled branches in document order: node, field, code
    (``unreachable`` or ``unhandled``, for a page to word) and reason."""
    reachable = _reachable(flow)
    warnings = []
    for node_id, node in flow.nodes.items():
        if node_id not in reachable:
            warnings.append(_warning("unreachable", FlowIssue(node_id, "", "no path from the start leads here")))
            continue
        for field, consequence in UNHANDLED.get(node.type, {}).items():
            if getattr(node.spec, field, None) is None:
                warnings.append(_warning("unhandled", FlowIssue(node_id, field, f"no '{field}' branch: {consequence}")))
    return warnings


def _warning(code: str, issue: FlowIssue) -> dict[str, str | None]:
    return {"node": issue.node, "field": issue.field, "code": code, "reason": issue.reason}
