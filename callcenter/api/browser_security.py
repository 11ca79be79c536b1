"""What protects the pages in the browser: response headers on everything the node serves, and
the WebSocket handshake's Origin check.

The pages load only their own modules and stylesheets (no inline script or style, no CDN),
so the Content-Security-Policy can forbid everything else; ``frame-ancestors 'none'`` stops
another site from framing the softphone to click through accept or transfer. The session
cookie is ``SameSite=Strict`` (see ``api/auth.py``), and WebSockets, which browsers open
cross-site with cookies and without CORS, are refused unless the page came from this node
(or an origin configured in ``allowed_origins``).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from callcenter.settings import Settings

#: Every source the pages use is their own node; media and images may also come from blobs
#: (recordings' waveforms and playback) and data URLs (icons).
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),  # frame-ancestors for browsers that predate CSP 2
    (b"referrer-policy", b"no-referrer"),  # call and recording ids live in URLs
    (b"cross-origin-opener-policy", b"same-origin"),
    # the softphone and the wallboard need the microphone; nothing needs the rest
    (b"permissions-policy", b"microphone=(self), camera=(), geolocation=(), payment=(), usb=()"),
)
#: Sent only over HTTPS (RFC 6797 7.2: a browser ignores it over plain HTTP anyway).
HSTS = (b"strict-transport-security", b"max-age=31536000")


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` (and HSTS over HTTPS) to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = HEADERS + ((HSTS,) if scope.get("scheme") == "https" else ())

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                if b"content-security-policy" in present:
                    # A page with a policy of its own names its framers in it (the chat panel, which
                    # tenants' sites frame); X-Frame-Options: DENY would refuse them in older browsers.
                    present.add(b"x-frame-options")
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in extra if name not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def origin_allowed(ws: WebSocket, settings: Settings) -> bool:
    """Whether a WebSocket handshake may proceed: its Origin is this node (same scheme, host and
    port as the request) or one of ``allowed_origins``. Clients that are not browsers send no
    Origin and are let through: the cookie or bearer token still decides who they are."""
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    own = f"{'https' if ws.url.scheme == 'wss' else 'http'}://{ws.headers.get('host', '')}"
    return origin.lower() == own.lower() or origin in settings.allowed_origins
