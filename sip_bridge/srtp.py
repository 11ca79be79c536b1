"""SRTP and SRTCP (RFC 3711) for one RTP stream keyed by SDES (RFC 4568), through libsrtp.

Only the edges of the node see SRTP: a stream unprotects what arrives before anything
reads it (the relay to a bridged leg, the recorder's tap, DTMF, the jitter buffer) and
protects what it sends last, so bridged legs keep passing G.711 payloads untouched.
"""

from __future__ import annotations

import pylibsrtp

from .sdp import SrtpParams

_PROFILES = {
    "AES_CM_128_HMAC_SHA1_80": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}


class SrtpError(ValueError):
    """A packet failed authentication or the replay check, or could not be processed: drop it."""


def _session(suite: str, key: bytes, direction: int) -> pylibsrtp.Session:
    return pylibsrtp.Session(pylibsrtp.Policy(key=key, ssrc_type=direction, srtp_profile=_PROFILES[suite]))


class SrtpContext:
    """Both directions of one stream: ours protects what we send, theirs checks what we receive.

    :meth:`update` applies renegotiated keys.  A direction whose suite and key stay keeps
    its crypto context (rollover counter, replay window); a changed key starts a fresh one,
    as RFC 4568 7.1.4 asks.
    """

    def __init__(self, params: SrtpParams) -> None:
        self.params = params
        self._tx = _session(params.suite, params.local_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self._rx = _session(params.suite, params.remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND)

    def update(self, params: SrtpParams) -> None:
        old = self.params
        if (params.suite, params.local_key) != (old.suite, old.local_key):
            self._tx = _session(params.suite, params.local_key, pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        if (params.suite, params.remote_key) != (old.suite, old.remote_key):
            self._rx = _session(params.suite, params.remote_key, pylibsrtp.Policy.SSRC_ANY_INBOUND)
        self.params = params

    def protect(self, packet: bytes) -> bytes:
        return self._tx.protect(packet)

    def protect_rtcp(self, packet: bytes) -> bytes:
        return self._tx.protect_rtcp(packet)

    def unprotect(self, packet: bytes) -> bytes:
        """The RTP packet in the clear; SrtpError when it must be dropped."""
        try:
            return self._rx.unprotect(packet)
        except (pylibsrtp.Error, ValueError) as exc:
            raise SrtpError(f"SRTP packet rejected: {exc}") from None

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        """The RTCP compound packet in the clear; SrtpError when it must be dropped."""
        try:
            return self._rx.unprotect_rtcp(packet)
        except (pylibsrtp.Error, ValueError) as exc:
            raise SrtpError(f"SRTCP packet rejected: {exc}") from None
