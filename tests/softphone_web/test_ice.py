"""ICE servers for the agent page: STUN as configured, TURN with TURN REST API credentials."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time

import pytest
from pydantic import ValidationError

from callcenter.settings import Settings
from softphone_web.ice import ice_servers

NOW = 1_700_000_000.0
SECRET = "north-wind-42"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("CALLCENTER_"):
            monkeypatch.delenv(key)


def _settings(**kw: object) -> Settings:
    return Settings(**kw)  # type: ignore[arg-type]


def test_nothing_configured_means_host_candidates_only() -> None:
    assert ice_servers(_settings(), "ann", now=NOW) == []


def test_stun_only() -> None:
    settings = _settings(stun_urls=["stun:stun.example.net:3478", "stuns:stun.example.net:5349"])
    assert ice_servers(settings, "ann", now=NOW) == [
        {"urls": ["stun:stun.example.net:3478", "stuns:stun.example.net:5349"]}]


def test_turn_credential_is_the_hmac_of_the_expiring_username() -> None:
    settings = _settings(stun_urls=["stun:turn.example.net"], turn_ttl=600, turn_secret=SECRET,
                         turn_urls=["turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349"])
    stun, turn = ice_servers(settings, "ann", now=NOW)
    assert stun == {"urls": ["stun:turn.example.net"]}
    assert turn["urls"] == ["turn:turn.example.net:3478?transport=udp", "turns:turn.example.net:5349"]
    assert turn["username"] == "1700000600:ann"  # expiry = now + turn_ttl, as coturn reads it
    # what coturn (use-auth-secret) computes: base64(HMAC-SHA1(static-auth-secret, username))
    expected = base64.b64encode(hmac.new(SECRET.encode(), b"1700000600:ann", hashlib.sha1).digest()).decode()
    assert turn["credential"] == expected
    assert SECRET not in repr(turn)


def test_expiry_follows_the_clock_and_the_ttl() -> None:
    settings = _settings(turn_urls=["turn:t.example.net"], turn_secret=SECRET)  # default ttl: one hour
    (first,) = ice_servers(settings, "ann", now=NOW)
    (later,) = ice_servers(settings, "ann", now=NOW + 0.9)
    (next_second,) = ice_servers(settings, "ann", now=NOW + 1)
    assert first["username"] == later["username"] == f"{int(NOW) + 3600}:ann"
    assert next_second["username"] == f"{int(NOW) + 3601}:ann" and next_second["credential"] != first["credential"]
    (bob,) = ice_servers(settings, "bob", now=NOW)
    assert bob["credential"] != first["credential"]
    (current,) = ice_servers(settings, "ann")  # no clock given: now
    expiry = int(current["username"].split(":")[0])
    assert abs(expiry - (time.time() + 3600)) < 5


def test_turn_urls_without_a_secret_are_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="turn_urls needs turn_secret"):
        _settings(turn_urls=["turn:t.example.net"])
    with pytest.raises(ValidationError, match="turn_urls needs turn_secret"):
        _settings(turn_urls=["turn:t.example.net"], turn_secret="")
    # a secret without urls is harmless: no TURN entry
    assert ice_servers(_settings(turn_secret=SECRET), "ann", now=NOW) == []


@pytest.mark.parametrize("field, url", [
    ("stun_urls", "turn:t.example.net"),
    ("stun_urls", "http://stun.example.net"),
    ("stun_urls", "stun:"),
    ("stun_urls", "stun:bad host"),
    ("turn_urls", "stun:t.example.net"),
    ("turn_urls", "t.example.net:3478"),
    ("turn_urls", "turns:"),
])
def test_urls_need_their_scheme(field: str, url: str) -> None:
    with pytest.raises(ValidationError, match=field):
        _settings(**{field: [url]}, turn_secret=SECRET)


@pytest.mark.parametrize("ttl", [59, 86401])
def test_ttl_is_bounded(ttl: int) -> None:
    with pytest.raises(ValidationError):
        _settings(turn_ttl=ttl)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_TURN_URLS", '["turn:t.example.net"]')
    monkeypatch.setenv("CALLCENTER_TURN_SECRET", SECRET)
    monkeypatch.setenv("CALLCENTER_TURN_TTL", "120")
    (turn,) = ice_servers(Settings(), "ann", now=NOW)
    assert turn["username"] == f"{int(NOW) + 120}:ann"
