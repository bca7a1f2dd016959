"""``Observer``: follow a router's state and topics as they change, for ``zs monitor``,
``zs sub`` and scripts. The blocking driver of ObserverCore (protocol/observing.py).

It subscribes to the router's PUB endpoints first, then asks for a Snapshot (and the topics'
pages), then folds in what is numbered after them. A lost Update or tick, a router restart or
a router silent past its heartbeat makes it ask again; it never guesses. One thread, one SUB
socket, and one short send-only session per snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Generator

import zmq

from zmqswarm.errors import ZmqswarmError
from zmqswarm.observe.base import BaseObserver, answer_kind
from zmqswarm.observe.query import AdminSession
from zmqswarm.protocol import WatchedState

__all__ = ["Observer"]


class Observer(BaseObserver):
    """Watch one router. ``watch()`` yields the same WatchedState each time something came
    in, and at least every ``tick`` seconds (so a view can age its rows), until the caller
    stops. ``topics`` holds the topics' values, and names those that changed.

    Args:
        router: endpoint URL; default ``$ZS_ROUTER``, then the built-in ipc endpoint.
        state: follow the router's peers and counters.
        topics: follow the topics whose names start with this ("": all; None: none).
        timeout: seconds to wait for each snapshot.
        curve: CURVE keys for a secured router (its PUB feed too); default: the files
            ``$ZS_CURVE_SECRET`` and ``$ZS_ROUTER_KEY`` name, if set.
    """

    def snapshot(self) -> WatchedState:
        """The state (and topics) now, in one conversation (no subscription)."""
        self._sync(None, self.timeout)
        return self.state

    def watch(self, tick: float = 0.5) -> Generator[WatchedState, None, None]:
        """Follow the router; raises RouterUnavailableError or ZsTimeoutError only if the
        very first snapshot fails (later failures show as ``silent`` and are retried)."""
        sub = self._open_sub()
        try:
            self._sync(sub, self.timeout)
            yield self.state
            heard = time.monotonic()
            while True:
                if sub.poll(int(tick * 1000)):
                    heard = time.monotonic()
                    if not self._take(sub):
                        self._resync(sub, self.timeout)
                elif self._quiet(time.monotonic() - heard):
                    # Ask briefly while it is away: a view waits for each attempt.
                    if self._resync(sub, min(self.timeout, 3 * tick)):
                        heard = time.monotonic()
                yield self.state
        finally:
            sub.close(0)

    def _resync(self, sub: zmq.Socket[bytes], timeout: float) -> bool:
        """Snapshots again after a gap, a restart or silence; False if the router is away (or
        answered garbage: a router restarting on the endpoint may be another program)."""
        try:
            self._sync(sub, timeout)
        except ZmqswarmError:
            if not self.core.connected:
                self.silent = True
            return False
        self.silent = False
        return True

    def _sync(self, sub: zmq.Socket[bytes] | None, timeout: float) -> None:
        plan = self.core.sync(subscribe=sub is not None)
        with AdminSession(self.url, timeout=timeout, context=self._ctx, curve=self.keys) as session:
            answer = None
            while (question := self._question(plan, answer, sub)) is not None:
                answer = session.ask(question, answer_kind(question))
