"""When the router probes every session for a connection that is gone (sans-IO, the clock
passed in).

libzmq's monitor says that some connection dropped, never whose: so after a drop every
session is probed (a ROUTER_MANDATORY send fails at once for a peer whose connection is
gone), now and once more after libzmq has surely settled. After the router made its
ROUTER socket anew (a key was revoked) every peer is reconnecting: for a second nobody is
taken for gone, neither by a sweep nor by a failed send, and then every session is probed.
"""

from __future__ import annotations

__all__ = ["Sweeps"]

REPROBE = 0.1  # seconds between the two sweeps after a drop
GRACE = 1.0  # seconds peers get to reconnect after a renewal
INF = float("inf")


class Sweeps:
    def __init__(self) -> None:
        self._due: list[float] = []
        self._grace_until = 0.0

    def dropped(self, now: float) -> None:
        """The monitor saw a connection drop."""
        start = max(now, self._grace_until)
        self._due = [start, start + REPROBE]

    def renewed(self, now: float) -> None:
        """Every connection was closed by the router itself."""
        self._grace_until = now + GRACE
        self._due = [self._grace_until, self._grace_until + REPROBE]

    def due(self, now: float) -> bool:
        """Is a sweep due now? (Each is answered once.)"""
        if self._due and now >= self._due[0]:
            self._due.pop(0)
            return True
        return False

    def next_at(self) -> float:
        return self._due[0] if self._due else INF

    def may_end(self, now: float) -> bool:
        """May a failed send end its session now (not while peers are reconnecting)?"""
        return now >= self._grace_until
