"""TLS contexts for SIP over TLS (RFC 3261 26.3.1, RFC 5630): TLS 1.2 or newer both ways.

The listener presents the node's certificate (phones and trunks are not asked for one);
outbound connections (trunks with ``outbound_transport = "tls"``) verify the trunk's
certificate against a CA bundle and the trunk's host name, and present the node's
certificate when it has one (for carriers that want mutual TLS).
"""

from __future__ import annotations

import ssl
from pathlib import Path

MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2
#: Seconds an outbound TCP connect plus TLS handshake may take before the trunk counts as failed.
CONNECT_TIMEOUT = 10.0


class TlsConfigError(ValueError):
    """A certificate, key or CA file that cannot be used; the message names the file and why."""


def _describe(exc: ssl.SSLError) -> str:
    if exc.reason == "KEY_VALUES_MISMATCH":
        return "the private key does not belong to the certificate"
    if exc.reason in ("NO_START_LINE", "NO_CERTIFICATE_OR_CRL_FOUND", "UNSUPPORTED") or "PEM lib" in str(exc):
        return "not a PEM certificate and private key"
    return str(exc.reason or exc)


def _load_chain(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    for path in (cert, key):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise TlsConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise TlsConfigError(f"certificate {cert} with key {key}: {_describe(exc)}") from None


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """The listener's context: the node's certificate chain (PEM, leaf first) and its key."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    _load_chain(context, cert, key)
    return context


def client_context(ca_file: Path | None = None, cert: Path | None = None,
                   key: Path | None = None) -> ssl.SSLContext:
    """Outbound connections: the peer's certificate must chain to ``ca_file`` (None: the
    system's store) and name the host we connect to."""
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                              cafile=str(ca_file) if ca_file is not None else None)
    except FileNotFoundError as exc:
        raise TlsConfigError(f"cannot read {ca_file}: {exc.strerror or exc}") from None
    except ssl.SSLError as exc:
        raise TlsConfigError(f"CA file {ca_file}: {_describe(exc)}") from None
    context.minimum_version = MINIMUM_VERSION
    if cert is not None and key is not None:
        _load_chain(context, cert, key)
    return context
