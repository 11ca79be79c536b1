"""Which calls a tenant records: all, none or a percentage, per tenant with per-queue overrides."""

from __future__ import annotations

from typing import Any

MODES = ("all", "none", "percent")


class PolicyError(ValueError):
    """A recording policy that cannot be applied; the message names the field."""


def validate_policy(policy: Any) -> dict[str, Any]:
    """The policy normalised (defaults filled in), or PolicyError naming what is wrong."""
    if not isinstance(policy, dict):
        raise PolicyError("recording policy must be an object")
    unknown = set(policy) - {"mode", "percent", "ivr", "queues"}
    if unknown:
        raise PolicyError(f"recording policy: unknown field(s) {', '.join(sorted(unknown))}")
    out = _rule(policy, "recording policy")
    ivr = policy.get("ivr", False)
    if not isinstance(ivr, bool):
        raise PolicyError("recording policy.ivr must be true or false")
    queues = policy.get("queues", {})
    if not isinstance(queues, dict):
        raise PolicyError("recording policy.queues must be an object of queue name -> rule")
    out["ivr"] = ivr
    out["queues"] = {str(name): _rule(rule, f"recording policy.queues.{name}") for name, rule in queues.items()}
    return out


def _rule(rule: Any, where: str) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise PolicyError(f"{where} must be an object")
    mode = rule.get("mode", "all")
    if mode not in MODES:
        raise PolicyError(f"{where}.mode must be one of {', '.join(MODES)}, not {mode!r}")
    percent = rule.get("percent", 100)
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        raise PolicyError(f"{where}.percent must be a number from 0 to 100")
    return {"mode": mode, "percent": percent}


def records(policy: dict[str, Any], queue: str | None, roll: float) -> bool:
    """Whether a call answered from ``queue`` is recorded; ``roll`` is uniform in [0, 1) (drawn
    once per call, so a percentage samples calls, not pieces of calls)."""
    rule = policy.get("queues", {}).get(queue) if queue is not None else None
    rule = rule or policy
    mode = rule.get("mode", "all")
    if mode == "none":
        return False
    if mode == "percent":
        return roll * 100 < float(rule.get("percent", 100))
    return True
