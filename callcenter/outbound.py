"""Calls an agent places from the softphone (issue 15, item 1): what may be dialed, from which
number, and by whom. Pure rules, no I/O: the softphone (``callcenter.softphone``) checks a
``dial`` request here before anything rings, so a refusal costs nothing and says why.

* **The number** is what the agent typed, normalised: the visual separators of RFC 3966
  (spaces, ``-``, ``.``, brackets) are dropped, a leading ``+`` is kept; anything else that is
  not a digit, ``*`` or ``#`` is refused (``bad-number``) rather than silently dropped: the
  dialing rules must judge the digits that will reach the trunk.
* **The tenant's dialing rules** (``RoutingTable.may_dial``, the toll-fraud guard the
  transfers and callbacks use) must allow it (``number-not-allowed``), and one of the tenant's
  trunks must be up (``no-trunk``); the SIP endpoint checks both again when it dials.
* **The caller ID** is one of the tenant's numbers (``numbers`` table), never an arbitrary
  one: the first of them by default, another the agent picks from the pad's list; a number
  that is not the tenant's is refused (``bad-caller-id``), and a tenant without numbers cannot
  call out (``no-caller-id``).
* **The agent** may dial when not busy with a call: ``available``, on ``break`` (a call center
  calls customers back between breaks: the break resumes after the call) or in ``wrap_up``
  (the after-call work of the previous call ends; its disposition can still be saved). Not
  while ``reserved`` (ringing, or a callback being dialed for them) or ``on_call``
  (``dial-busy``), nor ``offline`` (``dial-offline``: the agent is not working, the ACD would
  not know them busy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from acd import AgentState
from sip_bridge.call import Call
from sip_bridge.routing import DIAL_STRING_CHARS, RoutingTable, Trunk, normalise_number

#: States from which an agent may place a call (see the module's docstring).
DIAL_STATES = frozenset({AgentState.AVAILABLE, AgentState.BREAK, AgentState.WRAP_UP})
#: The longest number accepted (E.164 allows 15 digits; room for access codes and * / #).
MAX_DIGITS = 24


class OutboundRefused(Exception):
    """A call the agent may not place; ``error_id`` and ``params`` let the page word it
    (``agent.error.<id>``), the message says it in English for logs and API clients."""

    def __init__(self, message: str, error_id: str = "dial-failed", **params: str) -> None:
        super().__init__(message)
        self.error_id = error_id
        self.params = params


class Lines(Protocol):
    """What outbound calls go through (``SipEndpoint``): the tenants' dialing rules and numbers,
    and the trunks that are up."""

    @property
    def routing(self) -> RoutingTable: ...

    def trunks_up(self, tenant_id: int, trunk_id: int | None = None) -> list[Trunk]: ...


class Dialer(Lines, Protocol):
    """Places the agents' calls (``SipEndpoint.dial``): ``placed`` hears of the call before it rings."""

    async def dial(self, tenant_id: int, number: str, *, caller_id: str = "anonymous",
                   trunk_id: int | None = None, timeout: float = 60.0,
                   placed: Callable[[Call], None] | None = None) -> Call: ...


def normalise_dialed(raw: str) -> str:
    """The number as it will be dialed: digits, ``*`` and ``#``, with a leading ``+`` kept."""
    text = raw.strip()
    digits = normalise_number(text)
    if not digits or not DIAL_STRING_CHARS.issuperset(text) or "+" in text[1:] or len(digits) > MAX_DIGITS:
        raise OutboundRefused(f"{raw!r} is not a phone number", "bad-number", number=raw[:40])
    return ("+" if text.startswith("+") else "") + digits


def tenant_numbers(routing: RoutingTable, tenant_id: int) -> list[str]:
    """The tenant's own numbers, the caller IDs it may present (the first is the default)."""
    return [n.number for n in routing.numbers.values() if n.tenant_id == tenant_id]


def caller_id_for(routing: RoutingTable, tenant_id: int, requested: str | None) -> str:
    """The caller ID to present: ``requested`` if it is one of the tenant's numbers, the
    tenant's first number when none is asked for."""
    numbers = tenant_numbers(routing, tenant_id)
    if not numbers:
        raise OutboundRefused("this tenant has no number to call from", "no-caller-id")
    if not requested:
        return numbers[0]
    if requested not in numbers:
        raise OutboundRefused(f"{requested} is not one of this tenant's numbers", "bad-caller-id",
                              number=requested[:40])
    return requested


def check_agent(state: AgentState) -> None:
    """Whether an agent in ``state`` may place a call now."""
    if state in DIAL_STATES:
        return
    if state is AgentState.OFFLINE:
        raise OutboundRefused("go available (or on a break) to place calls", "dial-offline")
    raise OutboundRefused("finish the call in progress first", "dial-busy")


def check_number(lines: Lines, tenant_id: int, number: str) -> None:
    """The tenant's dialing rules allow ``number`` and a trunk is up to carry it."""
    if not lines.routing.may_dial(tenant_id, number):
        raise OutboundRefused(f"{number} is not allowed by this tenant's dialing rules", "number-not-allowed",
                              target=number)
    if not lines.trunks_up(tenant_id):
        raise OutboundRefused("no outbound trunk is up", "no-trunk")


#: A failed dial's SIP cause (``DialError.cause``) -> the error the page shows.
DIAL_FAILURES: dict[str, str] = {
    "busy": "dial-callee-busy", "declined": "dial-callee-busy", "no_answer": "dial-no-answer",
    "unavailable": "dial-no-answer", "not_found": "dial-not-found", "dialing_rule": "number-not-allowed",
    "no_trunk": "no-trunk",
}


def failure_error(cause: str) -> str:
    """The error id of a call that was placed but not answered."""
    return DIAL_FAILURES.get(cause, "dial-failed")

