"""Node classes, one per node type, and the factory that builds them from validated specs."""

from __future__ import annotations

from pydantic import BaseModel

from ivr.nodes.ask import Gather, Menu
from ivr.nodes.base import ExpressionCompileError, Node, TenantFacts
from ivr.nodes.http import Http
from ivr.nodes.logic import BusinessHours, Condition, Goto, Set
from ivr.nodes.route import Queue, Transfer, Voicemail
from ivr.nodes.sections import Sensitive, Subflow
from ivr.nodes.speak import Hangup, Play, Say
from ivr.nodes.survey import Survey
from ivr.schema import NODE_TYPES

NODE_CLASSES: dict[str, type[Node]] = {  # type: ignore[type-arg]
    cls.type: cls
    for cls in (Play, Say, Menu, Gather, Survey, Condition, Set, BusinessHours, Http, Queue, Voicemail, Transfer,
                Subflow, Sensitive, Goto, Hangup)
}
assert set(NODE_CLASSES) == set(NODE_TYPES), "every node type in the schema needs its class"


def build_node(spec: BaseModel) -> Node:  # type: ignore[type-arg]
    """The node for a validated spec; raises ExpressionCompileError for a bad expression."""
    return NODE_CLASSES[spec.type](spec)  # type: ignore[attr-defined]


__all__ = ["NODE_CLASSES", "ExpressionCompileError", "Node", "TenantFacts", "build_node"]
