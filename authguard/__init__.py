"""Brute-force protection shared by the SIP bridge and the HTTP sign-in (sans-I/O)."""

from authguard.events import SecurityEvents
from authguard.guard import AuthGuard, Ban, BanListener, Thresholds

__all__ = ["AuthGuard", "Ban", "BanListener", "SecurityEvents", "Thresholds"]
