"""Which peers a view has room for: the busiest first, and a count of the rest. Pure, and
without rich, so that any view (the monitor, a script) can use it.

A row is busy by the mail it holds: the most queued and in flight first, then the longest
waiting (an offline name with mail is trouble, and shows), then those that report a state
(a ``zs agent`` says what it is doing), then the rest by name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from zmqswarm.protocol import PeerItem

__all__ = ["Census", "busiest", "census"]


@dataclass(frozen=True, slots=True)
class Census:
    """Every row a router reports, counted."""

    peers: int = 0
    online: int = 0
    with_mail: int = 0
    queued: int = 0
    inflight: int = 0


def census(rows: Iterable[PeerItem]) -> Census:
    peers = online = with_mail = queued = inflight = 0
    for row in rows:
        peers += 1
        online += row.online
        with_mail += bool(row.queued or row.inflight)
        queued += row.queued
        inflight += row.inflight
    return Census(peers, online, with_mail, queued, inflight)


def _busy(row: PeerItem) -> tuple[int, int, bool, str]:
    return (-(row.queued + row.inflight), -row.waiting_ms, not row.state, row.name)


def busiest(rows: Iterable[PeerItem], limit: int) -> list[PeerItem]:
    """The ``limit`` busiest rows, busiest first."""
    import heapq

    return heapq.nsmallest(max(0, limit), rows, key=_busy)
