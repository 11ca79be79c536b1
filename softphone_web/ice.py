"""ICE servers for an agent's page: STUN as configured, TURN with time-limited credentials.

TURN credentials follow the TURN REST API (draft-uberti-behave-turn-rest), which coturn
implements as ``use-auth-secret``: the username is ``"<expiry unix time>:<user>"`` and the
password is ``base64(HMAC-SHA1(shared secret, username))``. The TURN server recomputes
the HMAC and refuses expired usernames, so the page only ever holds a credential that
dies after ``turn_ttl`` seconds; the shared secret never leaves the node.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, Protocol


class IceSettings(Protocol):
    """What :func:`ice_servers` reads (``callcenter.settings.Settings`` has it)."""

    stun_urls: list[str]
    turn_urls: list[str]
    turn_secret: str | None
    turn_ttl: int


def turn_credential(secret: str, username: str) -> str:
    """base64(HMAC-SHA1(secret, username)): the TURN password for ``username``."""
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def ice_servers(settings: IceSettings, username: str, now: float | None = None) -> list[dict[str, Any]]:
    """RTCIceServer dicts for the page of ``username`` (``RTCConfiguration.iceServers``).

    STUN urls as one entry when configured; TURN urls as one entry with a credential
    valid until ``now + turn_ttl`` when both urls and secret are configured (TURN urls
    without a secret are rejected by the settings, and skipped here). Empty: host
    candidates only.
    """
    servers: list[dict[str, Any]] = []
    if settings.stun_urls:
        servers.append({"urls": list(settings.stun_urls)})
    if settings.turn_urls and settings.turn_secret:
        expiry = int((time.time() if now is None else now) + settings.turn_ttl)
        turn_user = f"{expiry}:{username}"  # login names never contain ':' (api.users.USERNAME_PATTERN)
        servers.append({"urls": list(settings.turn_urls), "username": turn_user,
                        "credential": turn_credential(settings.turn_secret, turn_user)})
    return servers
