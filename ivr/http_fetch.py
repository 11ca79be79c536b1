"""The I/O half of the IVR ``http`` node: call a tenant's CRM endpoint, get JSON back.

The URL comes from a tenant's flow, so every request is treated as untrusted
(server-side request forgery is the main risk):

1. the URL must be plain ``http``/``https`` with a host and no credentials;
2. the host must be on the tenant's allow-list (exact names or ``*.example.com``);
3. the host is resolved once, and *every* address it resolves to must be
   public unless ``allow_private`` is set (loopback, RFC 1918, link-local such
   as the 169.254.169.254 cloud metadata service, CGNAT, multicast, reserved,
   unspecified, and IPv6 forms that embed such an IPv4 address);
4. the request is sent to the address that was checked, never to a fresh DNS
   answer, so a DNS rebinding between check and connect cannot reach an
   internal service (see :func:`_send`).

Redirects are not followed (a redirect to an internal address would bypass
2-3), proxies from the environment are ignored (a proxy would resolve the name
again), and the body is read in chunks and abandoned past ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import idna

logger = logging.getLogger(__name__)

ALLOWED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
MAX_URL_LENGTH = 4096

#: Headers the fetcher sets itself: a flow must not be able to point ``Host``
#: elsewhere or break the framing of the request.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HOST_NAME = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class HttpFetchError(Exception):
    """A request that did not produce usable JSON.

    ``reason`` is one of: ``bad_url``, ``host_not_allowed``, ``private_address``,
    ``timeout``, ``connection``, ``bad_status``, ``too_large``, ``bad_json``
    (an IVR flow can branch on it); ``message`` is for logs and people.
    """

    REASONS = frozenset({"bad_url", "host_not_allowed", "private_address", "timeout",
                         "connection", "bad_status", "too_large", "bad_json"})

    def __init__(self, reason: str, message: str, *, status: int | None = None) -> None:
        assert reason in self.REASONS, reason
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
        #: The HTTP status for ``bad_status``, else None.
        self.status = status


_client: httpx.AsyncClient | None = None
_client_loop: asyncio.AbstractEventLoop | None = None


def _get_client() -> httpx.AsyncClient:
    """The process's client, created on first use (again if the event loop changed)."""
    global _client, _client_loop
    loop = asyncio.get_running_loop()
    if _client is None or _client_loop is not loop:
        _client = httpx.AsyncClient(
            follow_redirects=False,
            # Proxies would resolve the host again; custom CA bundles are not needed.
            trust_env=False,
            # No keep-alive: connections are made to an IP address, so the pool
            # would key them by IP alone and could reuse a TLS session verified
            # for one host name for a request to another host on the same IP.
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=0),
            timeout=httpx.Timeout(30.0),
        )
        _client_loop = loop
    return _client


async def close_client() -> None:
    """Close the shared client (on node shutdown; a later fetch makes a new one)."""
    global _client, _client_loop
    client, _client, _client_loop = _client, None, None
    if client is not None:
        await client.aclose()


async def fetch_json(
    url: str,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    timeout: float,
    allow_hosts: Sequence[str],
    allow_private: bool = False,
    max_bytes: int = 1_000_000,
) -> Any:
    """Send one request and return the parsed JSON body.

    ``timeout`` bounds everything: DNS, connect, TLS, sending and reading the
    whole body. Raises :class:`HttpFetchError` for anything the remote side or
    the URL can cause; raises ``ValueError`` for invalid arguments (method,
    header names or values, non-positive limits), which a flow should have
    been validated against before it runs.
    """
    method = method.upper()
    if method not in ALLOWED_METHODS:
        raise ValueError(f"method {method!r} not allowed (one of {', '.join(sorted(ALLOWED_METHODS))})")
    if timeout <= 0 or max_bytes <= 0:
        raise ValueError("timeout and max_bytes must be positive")
    request_headers = _clean_headers(headers or {})
    parsed = _parse_url(url)
    host = parsed.raw_host.decode("ascii")
    if not host_allowed(host, allow_hosts):
        raise HttpFetchError("host_not_allowed", f"host {host!r} is not on this tenant's allow-list")

    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            addresses = await _resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
            if not allow_private:
                for address in addresses:
                    why = blocked_address(address)
                    if why:
                        raise HttpFetchError("private_address",
                                             f"host {host!r} resolves to {address} ({why})")
            status, body = await _send(parsed, addresses, method, request_headers, json_body,
                                       timeout, max_bytes)
    except TimeoutError:
        logger.info("http fetch timed out", extra={"host": host, "timeout": timeout})
        raise HttpFetchError("timeout", f"no complete answer from {host!r} within {timeout:g} s") from None
    except HttpFetchError as exc:
        logger.info("http fetch failed: %s", exc, extra={"host": host})
        raise
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise HttpFetchError("bad_json", f"answer from {host!r} is not JSON: {exc}") from None
    logger.debug("http fetch ok", extra={"host": host, "status": status, "bytes": len(body),
                                         "elapsed": round(time.monotonic() - started, 3)})
    return data


def map_response(data: Any, mapping: Mapping[str, str]) -> dict[str, Any]:
    """Pick values out of a JSON document: ``{"name": "customer.name", "last": "orders.0.id"}``.

    Each path is dotted keys, with decimal indexes into lists; a path that
    does not exist (missing key, index out of range, descending into a
    scalar) gives None. The empty path is the whole document.
    """
    return {variable: _lookup(data, path) for variable, path in mapping.items()}


def _lookup(data: Any, path: str) -> Any:
    if path == "":
        return data
    node = data
    for part in path.split("."):
        if isinstance(node, dict):
            if part not in node:
                return None
            node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or not part.isascii() or int(part) >= len(node):
                return None
            node = node[int(part)]
        else:
            return None
    return node


def blocked_address(address: IPAddress) -> str | None:
    """Why a request must not go to ``address`` (None if it is a public address)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d is an IPv4 connection
            why = blocked_address(address.ipv4_mapped)
            return f"maps to {address.ipv4_mapped}: {why}" if why else None
        # 6to4 carries the IPv4 address the packet ends up at. (NAT64's
        # 64:ff9b::/96 and IPv4-compatible ::a.b.c.d fall under ::/8, reserved.)
        if address.sixtofour is not None and (why := blocked_address(address.sixtofour)):
            return f"embeds {address.sixtofour}: {why}"
    for flag in ("is_loopback", "is_link_local", "is_multicast", "is_unspecified", "is_reserved",
                 "is_private"):
        if getattr(address, flag):
            return flag[3:].replace("_", "-")
    if not address.is_global:  # e.g. 100.64.0.0/10 (carrier-grade NAT), 192.0.0.0/24
        return "not globally routable"
    return None


def _parse_url(url: str) -> httpx.URL:
    if len(url) > MAX_URL_LENGTH:
        raise HttpFetchError("bad_url", f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        raise HttpFetchError("bad_url", "URL contains spaces or control characters")
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError) as exc:
        raise HttpFetchError("bad_url", f"invalid URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise HttpFetchError("bad_url", f"scheme {parsed.scheme!r} not allowed (http or https)")
    if parsed.userinfo:
        raise HttpFetchError("bad_url", "credentials in the URL are not allowed (use a header)")
    host = parsed.raw_host.decode("ascii")
    if not host:
        raise HttpFetchError("bad_url", "URL has no host")
    if not (_is_ip_literal(host) or _HOST_NAME.match(host.rstrip("."))):
        raise HttpFetchError("bad_url", f"invalid host {host!r}")
    if port is not None and not 0 < port < 65536:
        raise HttpFetchError("bad_url", f"invalid port {port}")
    return parsed


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _normal_host(host: str) -> str:
    """Lower case, no trailing dot, no IPv6 brackets, IDNA names in their ASCII form."""
    host = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            return ""
    return host


def host_allowed(host: str, allow_hosts: Sequence[str]) -> bool:
    """Whether ``host`` is on a tenant's allow-list (also used to validate flows before they run).

    Entries are exact host names (or IP literals), or ``*.example.com`` for any
    name under example.com, however deep, but not example.com itself. Case,
    a trailing dot, IPv6 brackets and IDNA spelling do not matter; ports are
    not part of the comparison.
    """
    host = _normal_host(host)
    for entry in allow_hosts:
        if entry.strip().startswith("*."):
            suffix = _normal_host(entry.strip()[2:])
            if suffix and host.endswith("." + suffix):
                return True
        elif _normal_host(entry) == host and host:
            return True
    return False


def _clean_headers(headers: Mapping[str, str]) -> dict[str, str]:
    cleaned = {"Accept": "application/json", "Accept-Encoding": "identity"}
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if any(c in value for c in "\r\n\0"):
            raise ValueError(f"header {name!r} contains a line break or NUL")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the fetcher")
        for existing in [k for k in cleaned if k.lower() == name.lower()]:
            del cleaned[existing]
        cleaned[name] = value
    return cleaned


async def _resolve(host: str, port: int) -> list[IPAddress]:
    """All addresses of ``host`` (an IP literal resolves to itself), in connect order."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host.rstrip(".") or host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise HttpFetchError("connection", f"cannot resolve {host!r}: {exc}") from None
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        # IPv6 link-local answers carry a zone ("fe80::1%eth0").
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise HttpFetchError("connection", f"{host!r} has no address")
    return addresses


async def _send(parsed: httpx.URL, addresses: list[IPAddress], method: str,
                headers: dict[str, str], json_body: Any, timeout: float,
                max_bytes: int) -> tuple[int, bytes]:
    """Send the request to one of the checked ``addresses``; return (status, body).

    Pinning works by putting the checked IP address in the URL (so httpx does
    no DNS lookup of its own) and carrying the real name where the protocol
    needs it: in the ``Host`` header for virtual hosting, and for https in
    httpcore's ``sni_hostname`` request extension, which is used both as the
    TLS SNI and as the name the certificate is verified against. The
    certificate check is therefore as strict as for a normal request to the
    host name. Addresses are tried in resolver order until one connects.
    """
    host_header = parsed.netloc.decode("ascii")
    hostname = parsed.raw_host.decode("ascii").rstrip(".")
    extensions: dict[str, Any] = {"timeout": httpx.Timeout(timeout).as_dict()}
    if parsed.scheme == "https":
        extensions["sni_hostname"] = hostname
    client = _get_client()
    last_error: Exception | None = None
    for address in addresses:
        request = client.build_request(method, parsed.copy_with(host=str(address)),
                                       headers={**headers, "Host": host_header},
                                       json=json_body, extensions=extensions)
        try:
            response = await client.send(request, stream=True)
        except httpx.ConnectError as exc:  # this address refuses: try the next one
            last_error = exc
            continue
        except httpx.TimeoutException:
            raise TimeoutError from None
        except httpx.HTTPError as exc:
            raise HttpFetchError("connection", f"{hostname}: {exc or type(exc).__name__}") from None
        try:
            return response.status_code, await _read_body(response, hostname, max_bytes)
        finally:
            await response.aclose()
    raise HttpFetchError("connection", f"cannot connect to {hostname}: {last_error}")


async def _read_body(response: httpx.Response, hostname: str, max_bytes: int) -> bytes:
    if not 200 <= response.status_code < 300:
        where = response.headers.get("location")
        detail = f" (redirect to {where!r}, not followed)" if where and 300 <= response.status_code < 400 else ""
        raise HttpFetchError("bad_status", f"{hostname} answered {response.status_code}{detail}",
                             status=response.status_code)
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise HttpFetchError("too_large", f"{hostname} announced {declared} bytes (limit {max_bytes})")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise HttpFetchError("too_large", f"answer from {hostname} exceeds {max_bytes} bytes")
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise TimeoutError from None
    except httpx.HTTPError as exc:
        raise HttpFetchError("connection", f"{hostname}: {exc or type(exc).__name__}") from None
    return b"".join(chunks)
