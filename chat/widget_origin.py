"""Which web pages may open a tenant's chat widget.

The widget's panel is a page of the node shown in an iframe on the tenant's site; the browser
itself refuses to show it inside any other site when the page's Content-Security-Policy names
the tenant's origins in ``frame-ancestors``. Origins are ``scheme://host[:port]`` as browsers
send them (lower case, no path, default ports left out).
"""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class OriginError(ValueError):
    """Not an origin a browser could send."""


def normalise_origin(value: str) -> str:
    """``value`` as a browser's Origin: ``https://Shop.example.com:443/x`` -> ``https://shop.example.com``."""
    parts = urlsplit(value.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise OriginError(f"not an http(s) origin: {value!r}")
    if parts.username or parts.password or any(c in parts.hostname for c in " *;,'\""):
        raise OriginError(f"not an http(s) origin: {value!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise OriginError(f"bad port in {value!r}") from exc
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else "")


def frame_ancestors(origins: list[str]) -> str:
    """The CSP directive letting exactly ``origins`` (and the node itself) frame the panel."""
    return "frame-ancestors " + " ".join(["'self'", *origins])


def origin_allowed(origin: str | None, allowed: list[str]) -> bool:
    """Whether a request's Origin header is one of ``allowed`` (already normalised)."""
    if not origin:
        return False
    try:
        return normalise_origin(origin) in allowed
    except OriginError:
        return False
