"""A small local CRM over HTTP for IVR tests: one request per connection, routed by path."""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass, field


DOC = {"customer": {"name": "Ann", "tier": "gold"}, "orders": [{"id": 7}, {"id": 9}], "ok": True}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CrmServer:
    """A tiny HTTP/1.1 server: one request per connection, routes by path."""

    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in
                       (line.split(":", 1) for line in lines[1:] if ":" in line)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Seen(method, path, headers, body))
            await self.respond(path, headers, method, body, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def respond(self, path: str, headers: dict[str, str], method: str, body: bytes,
                      writer: asyncio.StreamWriter) -> None:
        def send(status: str, payload: bytes, extra: str = "") -> None:
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(payload)}\r\nConnection: close\r\n{extra}\r\n"
                         .encode() + payload)

        path = path.split("?", 1)[0]  # routes ignore the query string
        if path == "/ok":
            send("200 OK", json.dumps(DOC).encode())
        elif path == "/echo":
            send("200 OK", json.dumps({"method": method, "host": headers.get("host"),
                                       "auth": headers.get("authorization"),
                                       "body": body.decode()}).encode())
        elif path == "/slow":
            await asyncio.sleep(5)
            send("200 OK", b"{}")
        elif path == "/slow-body":  # headers at once, then the body trickles
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
            await writer.drain()
            await asyncio.sleep(5)
        elif path == "/bad-json":
            send("200 OK", b"<html>not json</html>")
        elif path == "/error":
            send("500 Internal Server Error", b'{"error": "boom"}')
        elif path == "/redirect":
            send("302 Found", b"", "Location: /ok\r\n")
        elif path == "/big":
            send("200 OK", b"[" + b"1," * 600_000 + b"1]")
        elif path == "/big-chunked":  # no Content-Length: only counting the bytes read stops it
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(100):
                chunk = b" " * 65536
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            send("404 Not Found", b"{}")
        await writer.drain()
