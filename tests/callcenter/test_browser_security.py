"""What every page and file the node serves tells the browser: a Content-Security-Policy without
inline script, no framing, no sniffing, no referrer; HSTS and Secure cookies over HTTPS only."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Route

from callcenter.api.browser_security import CONTENT_SECURITY_POLICY

from .conftest import PASSWORD, World

#: Everything a browser loads without signing in first: the pages and their files.
PAGES = ["/", "/agent", "/qa", "/supervisor", "/static/base.css", "/static/webrtc.js", "/static/shell.js",
         "/static/i18n/en/shell.json", "/agent/static/agent.js",
         "/agent/static/agent.css", "/qa/static/qa.js", "/supervisor/static/supervisor.js",
         "/supervisor/static/charts.js", "/openapi.json", "/healthz"]
#: Answers that are not pages must carry the headers too (an error page can be framed as well).
OTHERS = ["/api/me", "/no-such-page", "/agent/static/..%2F..%2Fsecret", "/static/..%2F..%2Fapi%2Fpages.py",
          "/static/i18n/..%2F..%2F..%2Fpyproject.toml", "/docs"]


def _page_routes(client: TestClient) -> set[str]:
    """GET routes outside /api without path parameters: the pages the node serves."""
    app = client.app
    return {r.path for r in app.routes  # type: ignore[attr-defined]
            if isinstance(r, Route) and not isinstance(r, APIRoute) and "GET" in (r.methods or ())
            and not r.path.startswith("/api") and "{" not in r.path} | {
        r.path for r in app.routes  # type: ignore[attr-defined]
        if isinstance(r, APIRoute) and not r.include_in_schema and "{" not in r.path and "GET" in r.methods}


def test_the_list_of_pages_covers_every_page_the_node_serves(world: World) -> None:
    assert _page_routes(world.client) <= set(PAGES)


@pytest.mark.parametrize("path", PAGES + OTHERS)
def test_every_page_and_answer_carries_the_browser_protections(world: World, path: str) -> None:
    resp = world.client.get(path)
    assert resp.status_code in (200, 401, 404), resp.text
    headers = resp.headers
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    policy = dict(part.strip().split(" ", 1) for part in CONTENT_SECURITY_POLICY.split(";"))
    assert policy["script-src"] == "'self'" and "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert policy["frame-ancestors"] == "'none'"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in headers  # plain HTTP: HSTS means nothing here


def test_pages_hold_no_inline_script_or_style(world: World) -> None:
    for path in ("/", "/agent", "/qa", "/supervisor"):
        html = world.client.get(path).text.lower()
        assert "<style" not in html and " style=" not in html and "javascript:" not in html
        for tag in html.split("<script")[1:]:
            assert " src=" in tag.split(">", 1)[0] and tag.split(">", 1)[1].startswith("</script"), path


def test_over_https_the_node_sends_hsts_and_a_secure_strict_cookie(world: World) -> None:
    client = TestClient(world.client.app, base_url="https://testserver")
    resp = client.post("/api/login", json={"tenant": "alpha", "username": "admin", "password": PASSWORD})
    assert resp.status_code == 200
    assert resp.headers["strict-transport-security"] == "max-age=31536000"
    cookie = resp.headers["set-cookie"].lower()
    assert "secure" in cookie and "samesite=strict" in cookie and "httponly" in cookie
    assert client.get("/agent").headers["strict-transport-security"] == "max-age=31536000"


def test_over_plain_http_the_cookie_is_strict_but_not_secure(world: World) -> None:
    resp = world.client.post("/api/login", json={"tenant": "alpha", "username": "admin", "password": PASSWORD})
    cookie = resp.headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "secure" not in cookie.replace("samesite", "")


@pytest.mark.parametrize("path", ["/api/agent/ws", "/api/supervisor/ws"])
def test_a_websocket_handshake_from_a_foreign_origin_is_refused(world: World, path: str) -> None:
    from starlette.testclient import WebSocketDenialResponse  # type: ignore[attr-defined]
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises((WebSocketDisconnect, WebSocketDenialResponse)) as refused:
        with world.client.websocket_connect(path, headers={"origin": "https://evil.example"}):
            pass
    if isinstance(refused.value, WebSocketDisconnect):
        assert refused.value.code == 1008
    # the node's own origin gets as far as authentication (no session here: 4401)
    with world.client.websocket_connect(path, headers={"origin": "http://testserver"}) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4401


def test_a_configured_origin_may_open_the_sockets(world: World) -> None:
    from starlette.websockets import WebSocketDisconnect

    ctx = world.client.app.state.ctx  # type: ignore[attr-defined]
    ctx.settings.allowed_origins = ["https://crm.example.com"]
    with world.client.websocket_connect("/api/agent/ws", headers={"origin": "https://crm.example.com"}) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4401
