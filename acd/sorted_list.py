"""Removal from a list kept sorted with ``bisect.insort`` (keys are unique)."""

from __future__ import annotations

from bisect import bisect_left
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

K = TypeVar("K", bound="SupportsRichComparison")


def remove_sorted(items: list[K], key: K) -> bool:
    """Remove ``key`` from the sorted list ``items``; False if it was not there."""
    i = bisect_left(items, key)
    if i < len(items) and items[i] == key:
        del items[i]
        return True
    return False
