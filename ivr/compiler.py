"""Flow validation and compilation: the one factory that turns a document into runnable nodes.

``load_document`` reads JSON or YAML text; ``compile_flow`` validates it (schema, then
graph: unique ids, references inside their section, known subflows without recursion,
expressions) and builds the node objects; ``check_tenant`` runs every node's
preconditions against what the tenant has.  Every problem becomes a
:class:`FlowIssue` naming the node, the field, the reason and, for files, the line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import ValidationError

from ivr.errors import FlowIssue, FlowValidationError
from ivr.nodes import ExpressionCompileError, Node, TenantFacts, build_node
from ivr.schema import NODE_TYPES, FlowDocument, Prompt

MAIN = "main"
"""Section name of the flow's top level (subflows have their own names)."""


@dataclass
class CompiledFlow:
    document: FlowDocument
    nodes: dict[str, Node] = field(default_factory=dict)  # type: ignore[type-arg]
    starts: dict[str, str] = field(default_factory=dict)
    section_of: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.document.name

    @property
    def voice(self) -> str:
        return self.document.voice

    def as_json(self) -> dict[str, Any]:
        return self.document.model_dump(mode="json", exclude_defaults=True)

    def tts_prompts(self) -> list[tuple[str, str]]:
        """(text, voice) of every TTS prompt, to render them before the first call needs them."""
        found: list[tuple[str, str]] = []

        def walk(value: Any) -> None:
            if isinstance(value, Prompt):
                if value.tts is not None:
                    found.append((value.tts, value.voice or self.voice))
            elif hasattr(value, "model_fields"):
                for name in type(value).model_fields:
                    walk(getattr(value, name))
            elif isinstance(value, (list, tuple)):
                for item in value:
                    walk(item)
            elif isinstance(value, dict):
                for item in value.values():
                    walk(item)

        walk(self.document)
        return found


# -- reading files ----------------------------------------------------------------------
def load_document(text: str, filename: str = "") -> Any:
    """Parse a flow file: JSON, or YAML (by extension, or when the text is not JSON)."""
    if not filename.lower().endswith((".yaml", ".yml")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if filename.lower().endswith(".json") or text.lstrip().startswith(("{", "[")):
                raise FlowValidationError([FlowIssue(None, "", f"not valid JSON: {exc.msg}", exc.lineno)]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise FlowValidationError([FlowIssue(None, "", f"not valid YAML: {reason}", line)]) from exc


def _line_finder(text: str | None) -> Any:
    """A function from a path in the document to its 1-based line (None when unknown)."""
    if not text:
        return lambda path: None
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return lambda path: None

    def find(path: tuple[Any, ...]) -> int | None:
        node = root
        for part in path:
            if isinstance(node, yaml.MappingNode):
                nxt = next((v for k, v in node.value if k.value == str(part)), None)
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                nxt = node.value[part]
            else:
                nxt = None
            if nxt is None:
                break
            node = nxt
        return node.start_mark.line + 1 if node is not None else None

    return find


# -- compiling ---------------------------------------------------------------------------
def _field_path(field: str) -> tuple[Any, ...]:
    """"options.0.next" -> ("options", 0, "next"), to find the field's line."""
    return tuple(int(p) if p.isdigit() else p for p in field.split(".")) if field else ()


def _section_path(section: str) -> tuple[Any, ...]:
    return () if section == MAIN else ("subflows", section)


def _schema_issues(raw: Any, error: ValidationError, line_of: Any) -> list[FlowIssue]:
    issues = []
    for err in error.errors():
        loc = list(err["loc"])
        node_id: str | None = None
        path: tuple[Any, ...] = tuple(loc)
        field_parts = loc
        try:
            base = loc.index("nodes")
            index = loc[base + 1]
            section_raw = raw if base == 0 else raw["subflows"][loc[1]]
            node_raw = section_raw["nodes"][index]
            node_id = node_raw.get("id") if isinstance(node_raw, dict) else None
            node_id = node_id if isinstance(node_id, str) else f"#{int(index) + 1}"
            field_parts = loc[base + 2:]
            if field_parts and isinstance(node_raw, dict) and field_parts[0] == node_raw.get("type"):
                field_parts = field_parts[1:]  # the discriminator tag pydantic puts in the path
            path = tuple(loc[:base + 2]) + tuple(field_parts)
        except (ValueError, IndexError, KeyError, TypeError):
            pass
        reason, kind = err["msg"], err["type"]
        if err["type"] == "union_tag_invalid":
            field_parts = ["type"]
            reason = f"unknown node type; expected one of: {', '.join(NODE_TYPES)}"
        elif err["type"] == "union_tag_not_found":
            field_parts = ["type"]
            reason = "missing node type"
        elif err["type"] == "extra_forbidden":
            reason = "unknown field"
        ctx = tuple((k, v if v is None or isinstance(v, (str, int, float, bool)) else str(v))
                    for k, v in (err.get("ctx") or {}).items() if k != "error")
        issues.append(FlowIssue(node_id, ".".join(str(p) for p in field_parts),
                                reason.removeprefix("Value error, "), line_of(path), kind, ctx))
    return issues


def compile_flow(raw: Any, *, source_text: str | None = None) -> CompiledFlow:
    """Validate a flow document (a dict from JSON/YAML) and build its nodes.

    Raises :class:`FlowValidationError` listing every problem found.
    """
    line_of = _line_finder(source_text)
    if not isinstance(raw, dict):
        raise FlowValidationError([FlowIssue(None, "", "a flow is an object with name, start and nodes", 1)])
    try:
        document = FlowDocument.model_validate(raw)
    except ValidationError as exc:
        raise FlowValidationError(_schema_issues(raw, exc, line_of)) from exc

    flow = CompiledFlow(document)
    issues: list[FlowIssue] = []
    sections = {MAIN: document, **document.subflows}
    positions: dict[str, tuple[Any, ...]] = {}
    for section, body in sections.items():
        for index, spec in enumerate(body.nodes):
            pos = _section_path(section) + ("nodes", index)
            if spec.id in flow.section_of:
                issues.append(FlowIssue(spec.id, "id", "duplicate node id", line_of(pos)))
                continue
            positions[spec.id] = pos
            flow.section_of[spec.id] = section
            try:
                flow.nodes[spec.id] = build_node(spec)
            except ExpressionCompileError as exc:
                issues.append(FlowIssue(spec.id, exc.field, str(exc.error), line_of(pos + _field_path(exc.field))))
        if flow.section_of.get(body.start) != section:
            issues.append(FlowIssue(None, "start" if section == MAIN else f"subflows.{section}.start",
                                    f"start node '{body.start}' is not a node of "
                                    + ("the main flow" if section == MAIN else f"subflow '{section}'"),
                                    line_of(_section_path(section) + ("start",))))
        flow.starts[section] = body.start

    calls: dict[str, set[str]] = {name: set() for name in sections}
    for node_id, node in flow.nodes.items():
        section = flow.section_of[node_id]
        line = line_of(positions[node_id])
        for field_name, target in node.references().items():
            if target is None:
                continue
            field_line = line_of(positions[node_id] + _field_path(field_name))
            if target not in flow.section_of:
                issues.append(FlowIssue(node_id, field_name, f"unknown node '{target}'", field_line))
            elif flow.section_of[target] != section:
                issues.append(FlowIssue(node_id, field_name, f"node '{target}' is in another section "
                                        f"({flow.section_of[target]}); use a subflow node to enter a subflow",
                                        field_line))
        sub = node.subflow()
        if sub is not None:
            if sub not in document.subflows:
                issues.append(FlowIssue(node_id, "subflow", f"unknown subflow '{sub}'", line))
            else:
                calls[section].add(sub)
    cycle = _find_cycle(calls)
    if cycle:
        issues.append(FlowIssue(None, "subflows", "subflows call each other in a loop: " + " -> ".join(cycle)))
    if issues:
        raise FlowValidationError(issues)
    return flow


def _find_cycle(calls: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for callee in sorted(calls.get(name, ())):
            if state.get(callee) == 1:
                return path + [name, callee]
            if callee not in state and (found := visit(callee, path + [name])):
                return found
        state[name] = 2
        return None

    for name in sorted(calls):
        if name not in state and (found := visit(name, [])):
            return found
    return None


def check_tenant(flow: CompiledFlow, facts: TenantFacts, *, source_text: str | None = None) -> list[FlowIssue]:
    """Each node's preconditions against the tenant (prompts, calendars, hosts, dialing rules)."""
    line_of = _line_finder(source_text)
    issues = []
    for node_id, node in flow.nodes.items():
        section = flow.section_of[node_id]
        body = flow.document if section == MAIN else flow.document.subflows[section]
        index = next(i for i, spec in enumerate(body.nodes) if spec.id == node_id)
        node_path = _section_path(section) + ("nodes", index)
        issues += [FlowIssue(i.node, i.field, i.reason, line_of(node_path + _field_path(i.field)))
                   for i in node.preconditions(facts)]
    return issues


def validate_for_tenant(raw: Any, facts: TenantFacts, *, source_text: str | None = None) -> CompiledFlow:
    """compile_flow + check_tenant: what an import must pass before a version is stored."""
    flow = compile_flow(raw, source_text=source_text)
    issues = check_tenant(flow, facts, source_text=source_text)
    if issues:
        raise FlowValidationError(issues)
    return flow
