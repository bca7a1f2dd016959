"""``Observer``: follow a router's state as it changes, for ``zs monitor`` and scripts.

It subscribes to the router's PUB endpoints first, then asks for a Snapshot, then folds in
the Updates numbered after it (protocol/observe.py). A lost Update, a router restart or a
router silent past its heartbeat makes it ask again; it never guesses. One thread, one SUB
socket, and one short admin session per Snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import zmq

from zmqswarm.errors import ZmqswarmError
from zmqswarm.observe.query import snapshot
from zmqswarm.protocol import DecodeFailure, Snapshot, Update, WatchedState, decode
from zmqswarm.transport import peer_keys, peer_limits, resolve_router_url

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

__all__ = ["Observer"]

_WILDCARD_HOSTS = ("0.0.0.0", "*", "[::]", "::")


class Observer:
    """Watch one router. ``watch()`` yields the same WatchedState each time it changes, and
    at least every ``tick`` seconds (so a view can age its rows), until the caller stops.

    Args:
        router: endpoint URL; default ``$ZS_ROUTER``, then the built-in ipc endpoint.
        timeout: seconds to wait for each Snapshot.
        curve: CURVE keys for a secured router (its PUB feed too); default: the files
            ``$ZS_CURVE_SECRET`` and ``$ZS_ROUTER_KEY`` name, if set.
    """

    def __init__(
        self,
        router: str | None = None,
        *,
        timeout: float = 5.0,
        context: zmq.Context[Any] | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self.url = resolve_router_url(router)
        self.keys = peer_keys(curve)
        self.timeout = timeout
        self._ctx = context or zmq.Context.instance()
        self.state = WatchedState()
        self.bad_updates = 0  # PUB messages that did not decode as an Update
        self.silent = False  # the router said nothing for 3 heartbeats
        self._connected: list[str] = []

    def snapshot(self) -> WatchedState:
        """The state now, in one round trip (no subscription)."""
        self.state.apply_snapshot(self._ask(self.timeout))
        return self.state

    def watch(self, tick: float = 0.5) -> Generator[WatchedState, None, None]:
        """Follow the router; raises RouterUnavailableError or ZsTimeoutError only if the
        very first Snapshot fails (later failures show as ``silent`` and are retried)."""
        sub: zmq.Socket[bytes] = self._ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        peer_limits(sub, 1 << 20)
        if self.keys is not None:
            from zmqswarm.keys import secure_client

            secure_client(sub, self.keys)  # the feed is the router's state: not for everyone
        try:
            self._sync(sub, self.timeout)
            yield self.state
            heard = time.monotonic()
            while True:
                if sub.poll(int(tick * 1000)):
                    heard = time.monotonic()
                    if self._take(sub):
                        continue  # folded in: more may wait
                    self._resync(sub, self.timeout)
                elif not self._connected:  # the router publishes nothing: ask each tick
                    if self._resync(sub, min(self.timeout, 3 * tick)):
                        heard = time.monotonic()
                    else:
                        self.silent = True
                elif time.monotonic() - heard > 3 * self.state.heartbeat:
                    self.silent = True
                    self.state.lose_sync()
                    # Ask briefly while it is away: a view waits for each attempt.
                    if self._resync(sub, min(self.timeout, 3 * tick)):
                        heard = time.monotonic()
                yield self.state
        finally:
            sub.close(0)

    def _take(self, sub: zmq.Socket[bytes]) -> bool:
        """Fold in every waiting Update; False if one did not follow on."""
        while True:
            try:
                raw = sub.recv(zmq.NOBLOCK)
            except zmq.Again:
                return True
            try:
                update = decode(raw)
            except DecodeFailure:
                self.bad_updates += 1
                continue
            if not isinstance(update, Update):
                self.bad_updates += 1
                continue
            if not self.state.apply(update):
                return False

    def _resync(self, sub: zmq.Socket[bytes], timeout: float) -> bool:
        """A new Snapshot after a gap, a restart or silence; False if the router is away (or
        answered garbage: a router restarting on the endpoint may be another program)."""
        try:
            self._sync(sub, timeout)
        except ZmqswarmError:
            return False
        self.silent = False
        return True

    def _sync(self, sub: zmq.Socket[bytes], timeout: float) -> None:
        snap = self._ask(timeout)
        wanted = [self._reachable(url) for url in snap.publish]
        if wanted != self._connected:
            # Subscribe first, then take the Snapshot the Updates will follow (Clone pattern):
            # an Update published in between is older than the Snapshot, so it is skipped.
            for url in self._connected:
                sub.disconnect(url)
            for url in wanted:
                sub.connect(url)
            self._connected = wanted
            snap = self._ask(timeout)
        self.state.apply_snapshot(snap)

    def _ask(self, timeout: float) -> Snapshot:
        return snapshot(self.url, timeout=timeout, context=self._ctx, curve=self.keys)

    def _reachable(self, endpoint: str) -> str:
        """A tcp PUB bound on a wildcard address is reached on the host the router is."""
        if not endpoint.startswith("tcp://") or not self.url.startswith("tcp://"):
            return endpoint
        host, port = endpoint[len("tcp://") :].rsplit(":", 1)
        if host not in _WILDCARD_HOSTS:
            return endpoint
        router_host = self.url[len("tcp://") :].rsplit(":", 1)[0]
        return f"tcp://{router_host}:{port}"
