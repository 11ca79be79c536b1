"""The words a campaign's calls and contacts are described with (database, API, reports, pacer)."""

from __future__ import annotations

from typing import Literal

Outcome = Literal["person", "abandoned", "machine", "busy", "no_answer", "failed", "dnc", "invalid"]
OUTCOMES: tuple[Outcome, ...] = ("person", "abandoned", "machine", "busy", "no_answer", "failed", "dnc", "invalid")
"""How an attempt ended: ``person`` answered by a person (talked to an agent or ran the flow);
``abandoned`` a person answered and no agent was free within the 2 s rule; ``machine`` an
answering machine (left the message or hung up); ``busy``, ``no_answer``, ``failed`` the call was
not answered; ``dnc`` and ``invalid`` the contact was skipped (do-not-call list, dialing rules)."""

RETRYABLE: frozenset[str] = frozenset({"abandoned", "machine", "busy", "no_answer", "failed"})

#: A dial failure's SIP cause (``DialError.cause``) -> the attempt's outcome.
DIAL_CAUSES: dict[str, Outcome] = {"busy": "busy", "declined": "busy", "no_answer": "no_answer",
                                   "unavailable": "no_answer", "dialing_rule": "invalid"}

ContactStatus = Literal["pending", "dialing", "done", "exhausted", "skipped"]
"""``pending`` due at its next attempt time; ``dialing`` a call to it is in progress; ``done`` a
person answered; ``exhausted`` no attempt left; ``skipped`` on the do-not-call list or not allowed
by the tenant's dialing rules."""

CampaignStatus = Literal["draft", "running", "paused", "stopped", "finished"]

#: The transitions start / pause / resume / stop allow: action -> (from states, to state).
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"draft", "stopped", "finished"}), "running"),
    "pause": (frozenset({"running"}), "paused"),
    "resume": (frozenset({"paused"}), "running"),
    "stop": (frozenset({"running", "paused"}), "stopped"),
}


def dial_outcome(cause: str) -> Outcome:
    """The outcome of a dial that was not answered."""
    return DIAL_CAUSES.get(cause, "failed")
