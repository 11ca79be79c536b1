"""Errors raised by the asr package."""

from __future__ import annotations


class AsrError(Exception):
    """Speech recognition is misconfigured or unavailable (bad model path, no model, closed engine)."""
