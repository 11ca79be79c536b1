"""Errors of the recordings storage layer, so callers can tell damage from bugs."""

from __future__ import annotations


class RecordingError(Exception):
    """Base of every recordings storage error."""


class RecordingCorrupt(RecordingError):
    """A stored file or journal fails authentication or is truncated: never serve or trust its contents."""


class RecordingKeyError(RecordingError):
    """A wrapped tenant data key cannot be unwrapped (wrong master key, wrong tenant or damaged)."""
