"""Watching a router: ``Observer`` (Snapshot + numbered Updates), the rich monitor, and
one-shot queries (``list_peers``, ``list_dead``, ``snapshot``)."""

from __future__ import annotations

from .observer import Observer
from .query import DeadLetters, DeadMessage, list_dead, list_peers, snapshot

__all__ = ["DeadLetters", "DeadMessage", "Observer", "list_dead", "list_peers", "snapshot"]
