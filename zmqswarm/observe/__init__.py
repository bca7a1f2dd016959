"""Watching a router: ``Observer`` and ``AsyncObserver`` (Snapshot + numbered Updates, and
topics), the rich monitor, and one-shot queries (``list_peers``, ``list_dead``, ``snapshot``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .observer import Observer
from .query import DeadLetters, DeadMessage, list_dead, list_peers, snapshot

if TYPE_CHECKING:
    from .aio import AsyncObserver


def __getattr__(name: str) -> Any:
    if name == "AsyncObserver":  # on first use: `zs peers` never pays for asyncio
        from .aio import AsyncObserver

        return AsyncObserver
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AsyncObserver",
    "DeadLetters",
    "DeadMessage",
    "Observer",
    "list_dead",
    "list_peers",
    "snapshot",
]
