"""Observers' subscriptions to the router's PUB feed, applied by the router within a bound.

libzmq keeps every subscription a PUB socket is sent, with no limit on their number: one
observer sending 200,000 distinct prefixes of 128 B grew a router by 170 MiB, kept after it
left. So the feed is an XPUB with ``ZMQ_XPUB_MANUAL``: libzmq hands each (un)subscription
up, and the router applies only those the feed can use (everything, the ticks, or topics
under a prefix: ``ObserverCore.subscriptions``), and at most as many distinct topic prefixes
at once as it keeps topics (``max_topics``). The rest are counted (``subscriptions_bad``,
``subscriptions_refused``) and dropped: while one observer holds them all, a new observer
of topics under a prefix nobody holds gets nothing for it (one of the state, or of every
topic, still does). A subscription's size is bounded by the socket's ``MAXMSGSIZE``; how many wait
to be read, by its receive high-water mark (the sender's TCP window fills).

They are read just before the router publishes, so that each publish goes to every
subscription that had arrived by then: what a PUB socket does on its own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import zmq

from zmqswarm.protocol.topic_feed import MAX_TOPIC, TICK_KEY, TOPIC_KEY
from zmqswarm.transport import readable

__all__ = ["MAX_SUBSCRIPTION", "Subscriptions", "feed_socket"]

MAX_SUBSCRIPTION = 2 + 4 * MAX_TOPIC  # bytes: the flag, the key, a prefix of UTF-8
_ALWAYS = (b"", TICK_KEY)  # shared by every observer: never counted against the bound
_READ_AT_MOST = 1000  # subscriptions read a publish: a flood waits in the socket's pipe


def feed_socket(ctx: zmq.Context[Any]) -> zmq.Socket[bytes]:
    """The observers' feed: an XPUB that leaves its subscriptions to ``Subscriptions``."""
    pub: zmq.Socket[bytes] = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.XPUB_MANUAL, 1)
    pub.setsockopt(zmq.XPUB_VERBOSER, 1)  # every (un)subscription, repeats too: refcounts
    pub.setsockopt(zmq.MAXMSGSIZE, MAX_SUBSCRIPTION)
    return pub


class Subscriptions:
    """What the feed's observers subscribed to, counted by prefix."""

    def __init__(self, stats: dict[str, int], max_prefixes: int = 10_000) -> None:
        self.stats = stats
        self.max_prefixes = max_prefixes
        # Subscriptions applied less unsubscriptions seen, per topic prefix: never below
        # what libzmq holds (a repeat from one observer counts twice here, once there), so
        # the bound holds for libzmq's memory; a repeat only makes the bound come sooner.
        self.held: Counter[bytes] = Counter()

    def read(self, pub: zmq.Socket[bytes]) -> None:
        """Apply or refuse the (un)subscriptions waiting, each right after it is read (the
        manual XPUB applies a setting to the connection it last read from)."""
        for _ in range(_READ_AT_MOST):
            if not readable(pub):
                return
            message = pub.recv(zmq.NOBLOCK)
            flag, prefix = message[:1], message[1:]
            if flag not in (b"\x00", b"\x01") or not _usable(prefix):
                self._count("subscriptions_bad")
            elif flag == b"\x01":
                self._subscribe(pub, prefix)
            elif prefix in _ALWAYS or self.held[prefix] > 0:
                self._unsubscribe(pub, prefix)

    def _subscribe(self, pub: zmq.Socket[bytes], prefix: bytes) -> None:
        if prefix not in _ALWAYS:
            if prefix not in self.held and len(self.held) >= self.max_prefixes:
                self._count("subscriptions_refused")
                return
            self.held[prefix] += 1
        pub.setsockopt(zmq.SUBSCRIBE, prefix)

    def _unsubscribe(self, pub: zmq.Socket[bytes], prefix: bytes) -> None:
        # From an observer that left, libzmq has dropped it already: this is a no-op there.
        pub.setsockopt(zmq.UNSUBSCRIBE, prefix)
        if prefix not in _ALWAYS:
            self.held[prefix] -= 1
            if self.held[prefix] <= 0:
                del self.held[prefix]

    def _count(self, what: str) -> None:
        self.stats[what] = self.stats.get(what, 0) + 1


def _usable(prefix: bytes) -> bool:
    """A prefix the feed can use: everything, the ticks, or topics under a prefix."""
    return prefix in _ALWAYS or prefix.startswith(TOPIC_KEY)
