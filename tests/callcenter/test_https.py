"""``callcenter serve --tls-cert --tls-key``: HTTPS without a proxy, with HSTS and Secure cookies."""

from __future__ import annotations

import ssl
import warnings
from pathlib import Path

import httpx
import pytest

from tests.support.node import NodeProcess
from tests.support.tls import TestCa

pytestmark = pytest.mark.interop


def test_the_node_serves_its_pages_and_api_over_https(tmp_path: Path) -> None:
    ca = TestCa(tmp_path / "ca")
    server = ca.issue("node")
    data = tmp_path / "data"
    data.mkdir()
    node = NodeProcess(data, extra_args=["--tls-cert", str(server.cert), "--tls-key", str(server.key)]).start()
    try:
        url = f"https://127.0.0.1:{node.http_port}"
        assert any(f"HTTP {url}" in line for line in node.output)
        with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(ca.ca_file))) as client:
            page = client.get("/agent")
            assert page.status_code == 200 and "<html" in page.text.lower()
            assert page.headers["strict-transport-security"] == "max-age=31536000"
            assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
            login = client.post("/api/login", json={"tenant": "demo", "username": "admin",
                                                    "password": node.admin_password})
            assert login.status_code == 200
            cookie = login.headers["set-cookie"].lower()
            assert "; secure" in cookie and "samesite=strict" in cookie
            assert client.get("/api/me").json()["user"]["username"] == "admin"  # the Secure cookie came back
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served on that port
            httpx.get(f"http://127.0.0.1:{node.http_port}/healthz", timeout=5)
        old = ssl.create_default_context(cafile=str(ca.ca_file))
        with warnings.catch_warnings():  # deprecated, which is the point: the node must refuse it
            warnings.simplefilter("ignore", DeprecationWarning)
            old.maximum_version = ssl.TLSVersion.TLSv1_1
        with pytest.raises(httpx.TransportError):  # nothing older than TLS 1.2
            httpx.get(f"{url}/healthz", verify=old, timeout=5)
    finally:
        node.stop()


def test_a_certificate_without_its_key_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    from callcenter.cli import main

    assert main(["serve", "--data-dir", str(tmp_path), "--tls-cert", str(tmp_path / "x.pem")]) == 2
