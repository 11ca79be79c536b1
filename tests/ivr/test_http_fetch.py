"""ivr.http_fetch against a real HTTP server on 127.0.0.1 (nothing leaves the machine)."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ivr import http_fetch
from ivr.http_fetch import HttpFetchError, fetch_json, map_response
from tests.support.crm import DOC, CrmServer

LOCAL = ["127.0.0.1"]


@pytest.fixture(autouse=True)
async def _fresh_client() -> AsyncIterator[None]:
    yield
    await http_fetch.close_client()


def url(crm: CrmServer, path: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{crm.port}{path}"


async def fetch(target: str, **kwargs: Any) -> Any:
    kwargs.setdefault("timeout", 3.0)
    kwargs.setdefault("allow_hosts", LOCAL)
    kwargs.setdefault("allow_private", True)
    return await fetch_json(target, **kwargs)


async def reason_of(target: str, **kwargs: Any) -> HttpFetchError:
    with pytest.raises(HttpFetchError) as info:
        await fetch(target, **kwargs)
    return info.value


def pin_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    """Make the event loop's resolver answer ``answers`` (other names: real lookup)."""
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def fake(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            out: list[tuple[Any, ...]] = []
            for ip in answers[host]:
                if ipaddress.ip_address(ip).version == 6:
                    out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
                else:
                    out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
            return out
        return await real(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", fake)


# --- success and mapping -----------------------------------------------------------

async def test_success_and_mapping(crm: CrmServer) -> None:
    data = await fetch(url(crm, "/ok"))
    assert data == DOC
    assert map_response(data, {"name": "customer.name", "first": "orders.0.id", "second": "orders.1.id",
                               "missing": "customer.phone", "out_of_range": "orders.5.id",
                               "into_scalar": "customer.name.x", "not_index": "orders.x",
                               "whole_list": "orders", "flag": "ok"}) == {
        "name": "Ann", "first": 7, "second": 9, "missing": None, "out_of_range": None,
        "into_scalar": None, "not_index": None, "whole_list": [{"id": 7}, {"id": 9}], "flag": True}


def test_map_response_on_non_objects() -> None:
    assert map_response([1, [2, 3]], {"a": "1.0", "b": "0", "c": "-1", "d": ""}) == {
        "a": 2, "b": 1, "c": None, "d": [1, [2, 3]]}
    assert map_response(None, {"a": "x"}) == {"a": None}
    assert map_response({"a": None}, {"a": "a", "b": "a.b"}) == {"a": None, "b": None}


async def test_post_json_body_and_headers(crm: CrmServer) -> None:
    data = await fetch(url(crm, "/echo"), method="post", json_body={"caller": "+15550100"},
                       headers={"Authorization": "Bearer t0ken"})
    assert data["method"] == "POST"
    assert json.loads(data["body"]) == {"caller": "+15550100"}
    assert data["auth"] == "Bearer t0ken"
    assert data["host"] == f"127.0.0.1:{crm.port}"


async def test_invalid_arguments_are_value_errors(crm: CrmServer) -> None:
    with pytest.raises(ValueError):
        await fetch(url(crm, "/ok"), method="TRACE")
    with pytest.raises(ValueError):
        await fetch(url(crm, "/ok"), headers={"X-Evil": "a\r\nHost: other"})
    with pytest.raises(ValueError):
        await fetch(url(crm, "/ok"), headers={"Host": "internal"})
    assert crm.requests == []


# --- failures from the remote side -----------------------------------------------------

async def test_timeout_waiting_for_headers(crm: CrmServer) -> None:
    started = time.monotonic()
    err = await reason_of(url(crm, "/slow"), timeout=0.5)
    assert err.reason == "timeout"
    assert time.monotonic() - started < 2


async def test_timeout_bounds_the_body_too(crm: CrmServer) -> None:
    started = time.monotonic()
    err = await reason_of(url(crm, "/slow-body"), timeout=0.5)
    assert err.reason == "timeout"
    assert time.monotonic() - started < 2


async def test_bad_json(crm: CrmServer) -> None:
    assert (await reason_of(url(crm, "/bad-json"))).reason == "bad_json"


async def test_non_2xx(crm: CrmServer) -> None:
    err = await reason_of(url(crm, "/error"))
    assert (err.reason, err.status) == ("bad_status", 500)
    assert (await reason_of(url(crm, "/nowhere"))).status == 404


async def test_redirect_not_followed(crm: CrmServer) -> None:
    err = await reason_of(url(crm, "/redirect"))
    assert (err.reason, err.status) == ("bad_status", 302)
    assert [r.path for r in crm.requests] == ["/redirect"]


async def test_too_large_by_content_length(crm: CrmServer) -> None:
    assert (await reason_of(url(crm, "/big"))).reason == "too_large"
    assert isinstance(await fetch(url(crm, "/big"), max_bytes=2_000_000), list)


async def test_too_large_while_streaming(crm: CrmServer) -> None:
    assert (await reason_of(url(crm, "/big-chunked"), max_bytes=100_000)).reason == "too_large"


async def test_connection_refused() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert (await reason_of(f"http://127.0.0.1:{port}/ok")).reason == "connection"


# --- URL and allow-list --------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    "file:///etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1/", "http://user:pw@127.0.0.1/",
    "http://user@127.0.0.1/", "http:///path", "not a url", "http://127.0.0.1:99999/",
    "http://exa mple.com/", "http://127.0.0.1/\r\nX: y", "//127.0.0.1/x",
])
async def test_bad_urls(bad: str) -> None:
    assert (await reason_of(bad)).reason == "bad_url"


@pytest.mark.parametrize("target, allow, ok", [
    ("https://crm.example.com/", ["crm.example.com"], True),
    ("https://CRM.Example.COM./", ["crm.example.com"], True),
    ("https://crm.example.com:8443/", ["CRM.example.com"], True),
    ("https://eu.crm.example.com/", ["*.example.com"], True),
    ("https://example.com/", ["*.example.com"], False),
    ("https://evilexample.com/", ["*.example.com"], False),
    ("https://example.com.evil.net/", ["example.com"], False),
    ("https://crm.example.org/", ["crm.example.com"], False),
    ("https://crm.example.com/", [], False),
    ("http://[::1]/", ["[::1]"], True),
    ("https://bücher.example/", ["xn--bcher-kva.example"], True),
    ("https://xn--bcher-kva.example/", ["bücher.example"], True),
])
def test_allow_list(target: str, allow: list[str], ok: bool) -> None:
    host = httpx.URL(target).raw_host.decode()
    assert http_fetch.host_allowed(host, allow) is ok


async def test_host_not_on_allow_list(crm: CrmServer) -> None:
    err = await reason_of(url(crm, "/ok"), allow_hosts=["crm.example.com", "*.example.org"])
    assert err.reason == "host_not_allowed"
    assert crm.requests == []


# --- private addresses (SSRF) ----------------------------------------------------------

@pytest.mark.parametrize("host", [
    "127.0.0.1", "localhost", "[::1]", "10.1.2.3", "169.254.169.254", "192.168.0.1", "172.16.5.5",
    "100.64.0.1", "0.0.0.0", "[::]", "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[fe80::1]",
    "[fc00::1]", "224.0.0.1", "2130706433",  # decimal form of 127.0.0.1
])
async def test_private_addresses_refused(crm: CrmServer, host: str) -> None:
    bare = host.strip("[]")
    err = await reason_of(f"http://{host}:{crm.port}/ok", allow_hosts=[bare], allow_private=False)
    assert err.reason == "private_address", err
    assert crm.requests == []


async def test_every_resolved_address_is_checked(crm: CrmServer, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_dns(monkeypatch, {"crm.example.com": ["93.184.215.14", "10.0.0.7"],
                          "v6.example.com": ["2606:4700::1", "::ffff:192.168.1.1"]})
    for host in ("crm.example.com", "v6.example.com"):
        err = await reason_of(f"http://{host}/ok", allow_hosts=["*.example.com"], allow_private=False)
        assert err.reason == "private_address"
        assert "10.0.0.7" in err.message or "192.168.1.1" in err.message


def test_blocked_address_classification() -> None:
    blocked = ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "fe80::1", "::ffff:10.0.0.1",
               "2002:a00:1::1", "64:ff9b::a00:1", "::10.0.0.1", "100.64.0.1", "255.255.255.255",
               "ff02::1", "2001:db8::1"]
    public = ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "2002:808:808::1"]
    for ip in blocked:
        assert http_fetch.blocked_address(ipaddress.ip_address(ip)), ip
    for ip in public:
        assert http_fetch.blocked_address(ipaddress.ip_address(ip)) is None, ip


async def test_private_allowed_when_enabled(crm: CrmServer) -> None:
    assert await fetch(url(crm, "/ok"), allow_private=True) == DOC


async def test_localhost_falls_back_across_addresses(crm: CrmServer) -> None:
    # "localhost" may resolve to ::1 first; the server listens on 127.0.0.1 only.
    data = await fetch(url(crm, "/echo", host="localhost"), allow_hosts=["localhost"])
    assert data["host"] == f"localhost:{crm.port}"


async def test_request_goes_to_the_checked_address(crm: CrmServer, monkeypatch: pytest.MonkeyPatch) -> None:
    # The name exists only in our resolver answer: if httpx resolved it again the
    # request could not be made. The Host header still names the host.
    pin_dns(monkeypatch, {"crm.example.test": ["127.0.0.1"]})
    data = await fetch(url(crm, "/echo", host="crm.example.test"), allow_hosts=["crm.example.test"])
    assert data["host"] == f"crm.example.test:{crm.port}"


# --- https: SNI and certificate checked against the host name, not the pinned IP -------

@pytest.fixture
def tls_cert(tmp_path: Path) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("openssl command not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=crm.example.test",
                    "-addext", "subjectAltName=DNS:crm.example.test"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
async def tls_crm(tls_cert: tuple[Path, Path]) -> AsyncIterator[CrmServer]:
    server = CrmServer()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*tls_cert)
    ctx.sni_callback = lambda sock, name, _ctx: server.sni.append(name)
    srv = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=ctx)
    server.port = srv.sockets[0].getsockname()[1]
    yield server
    srv.close()
    await srv.wait_closed()


async def test_https_untrusted_certificate_is_a_connection_error(
        tls_crm: CrmServer, monkeypatch: pytest.MonkeyPatch) -> None:
    pin_dns(monkeypatch, {"crm.example.test": ["127.0.0.1"]})
    err = await reason_of(f"https://crm.example.test:{tls_crm.port}/ok", allow_hosts=["crm.example.test"])
    assert err.reason == "connection"
    assert tls_crm.sni == ["crm.example.test"]
    assert tls_crm.requests == []


async def test_https_pinned_with_sni(tls_crm: CrmServer, tls_cert: tuple[Path, Path],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Trust our test CA through a client built like the real one.
    pin_dns(monkeypatch, {"crm.example.test": ["127.0.0.1"], "other.example.test": ["127.0.0.1"]})
    client = httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(tls_cert[0])),
                               follow_redirects=False, trust_env=False,
                               limits=httpx.Limits(max_keepalive_connections=0))
    monkeypatch.setattr(http_fetch, "_client", client)
    monkeypatch.setattr(http_fetch, "_client_loop", asyncio.get_running_loop())
    try:
        data = await fetch(f"https://crm.example.test:{tls_crm.port}/echo",
                           allow_hosts=["*.example.test"])
        assert data["host"] == f"crm.example.test:{tls_crm.port}"
        assert tls_crm.sni == ["crm.example.test"]
        # Same IP, other name: the certificate does not cover it.
        err = await reason_of(f"https://other.example.test:{tls_crm.port}/echo",
                              allow_hosts=["*.example.test"])
        assert err.reason == "connection"
        assert tls_crm.sni[-1] == "other.example.test"
    finally:
        await client.aclose()
