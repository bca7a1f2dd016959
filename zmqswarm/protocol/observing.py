"""ObserverCore: what an observer does, minus the I/O. ``Observer`` and ``AsyncObserver``
drive it.

It folds what comes on the SUB socket (``receive``): state Updates into a WatchedState, topic
values and ticks into a TopicView, each with its own numbering. When either cannot follow on
(a gap, another router incarnation) it says so, and ``sync`` is the conversation that heals
it: a generator of steps (a question to ask the router over a send-only session, or the PUB
endpoints to connect the SUB socket to) that takes each question's answer back. Subscribe
first, then take the snapshot the feed follows (the Clone pattern): when the endpoints
change, the SUB is connected and the questions are asked again.

A state observer subscribes to everything (Updates carry no subscription part); an observer
of topics alone to ``t`` + its prefix and to ``T`` (the ticks).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import NamedTuple

from .codec import DecodeFailure, decode
from .frames import Frame
from .query_frames import (
    Observe,
    ObserveTopics,
    Snapshot,
    TopicSnapshot,
    TopicTick,
    TopicValue,
    Update,
)
from .state_feed import WatchedState
from .topic_feed import TICK_KEY, TOPIC_KEY, TopicView

__all__ = ["Answer", "Connect", "ObserverCore", "Step"]
_WILDCARD_HOSTS = ("0.0.0.0", "*", "[::]", "::")

STATE, TOPICS = "state", "topics"


class Connect(NamedTuple):
    """A step of ``sync``: connect the SUB socket to these endpoints (and only these)."""

    endpoints: list[str]


Step = Observe | ObserveTopics | Connect
Answer = tuple[Frame, list[bytes]]  # an answer's header and payload parts (None for Connect)


class ObserverCore:
    """``state``: follow the router's state (WatchedState); ``topics``: follow the topics
    under this prefix ("" every topic; None none). ``url`` is the router's: a tcp PUB bound
    on a wildcard address is reached on the router's host."""

    def __init__(self, url: str, *, state: bool = True, topics: str | None = None) -> None:
        self.url = url
        self.state = WatchedState()
        self.watch_state = state
        self.topics = TopicView(topics) if topics is not None else None
        self.bad_updates = 0  # PUB messages that were none of ours
        self.connected: list[str] = []  # the endpoints the SUB socket is connected to
        self.stale: set[str] = set()  # the feeds that cannot follow on: sync them

    def subscriptions(self) -> list[bytes]:
        """What the SUB socket subscribes to: everything while it follows the state (Updates
        carry no subscription part; topics outside the prefix are skipped here), else the
        topics under the prefix and the ticks."""
        if self.watch_state or self.topics is None:
            return [b""]
        return [TOPIC_KEY + self.topics.prefix.encode(), TICK_KEY]

    @property
    def heartbeat(self) -> float:
        """Seconds the router may stay silent on PUB while it lives."""
        beats = [self.state.heartbeat] if self.watch_state else []
        if self.topics is not None:
            beats.append(self.topics.heartbeat)
        return max(beats)

    @property
    def synced(self) -> bool:
        return (not self.watch_state or self.state.synced) and (
            self.topics is None or self.topics.synced
        )

    def lose_sync(self) -> None:
        """The router went quiet past its heartbeat: both feeds need a snapshot."""
        self.state.lose_sync()
        if self.topics is not None:
            self.topics.lose_sync()
        self.stale = {STATE, TOPICS}

    # -- the feed -------------------------------------------------------------------------

    def receive(self, parts: list[bytes]) -> bool:
        """Fold one PUB message in; False if a feed lost its place (``stale`` says which)."""
        first = parts[0]
        try:
            if len(parts) == 1:
                update = decode(first)
                if isinstance(update, Update):
                    if not self.watch_state or self.state.apply(update):
                        return True
                    self.stale.add(STATE)
                    return False
            elif first[:1] == TOPIC_KEY and len(parts) == 3:
                value = decode(parts[1])
                if isinstance(value, TopicValue):
                    if self.topics is not None:
                        self.topics.apply_value(value, parts[2])
                    return True
            elif first == TICK_KEY and len(parts) == 2:
                tick = decode(parts[1])
                if isinstance(tick, TopicTick):
                    if self.topics is None or self.topics.apply_tick(tick):
                        return True
                    self.stale.add(TOPICS)
                    return False
        except DecodeFailure:
            pass
        self.bad_updates += 1
        return True

    # -- snapshots ------------------------------------------------------------------------

    def sync(self, *, subscribe: bool = True) -> Generator[Step, Answer | None, None]:
        """Ask for what the ``stale`` feeds need (every feed if none is), connecting the SUB
        socket first when the router's PUB endpoints are not the ones it is connected to.
        ``subscribe=False``: a one-off look, no SUB. The driver sends each question's answer
        back; an error it raises while asking leaves the feeds stale, to be asked again."""
        wanted_feeds = set(self.stale) or {STATE, TOPICS}
        for _ in range(3):  # endpoints that keep changing: take what the last answer says
            snap: Snapshot | None = None
            pages: list[tuple[TopicSnapshot, list[bytes]]] = []
            publish: list[str] = []
            if self.watch_state and STATE in wanted_feeds:
                frame, _ = yield from self._ask(Observe())
                assert isinstance(frame, Snapshot)
                snap, publish = frame, frame.publish
            if self.topics is not None and TOPICS in wanted_feeds:
                after = ""
                while True:
                    frame, payloads = yield from self._ask(ObserveTopics(self.topics.prefix, after))
                    assert isinstance(frame, TopicSnapshot)
                    pages.append((frame, payloads))
                    if not frame.more or not frame.items:
                        break
                    after = frame.items[-1].topic
                publish = pages[0][0].publish
            if not subscribe:
                break
            wanted = [self.reachable(url) for url in publish]
            if wanted == self.connected:
                break
            yield Connect(wanted)
            self.connected = wanted
            wanted_feeds = {STATE, TOPICS}  # subscribed now: what follows is on the feed
        if snap is not None:
            self.state.apply_snapshot(snap)
            self.stale.discard(STATE)
        if pages:
            assert self.topics is not None
            self.topics.apply_snapshot(pages)
            self.stale.discard(TOPICS)

    @staticmethod
    def _ask(question: Observe | ObserveTopics) -> Generator[Step, Answer | None, Answer]:
        answer = yield question
        assert answer is not None
        return answer

    def reachable(self, endpoint: str) -> str:
        """A tcp PUB bound on a wildcard address is reached on the host the router is."""
        if not endpoint.startswith("tcp://") or not self.url.startswith("tcp://"):
            return endpoint
        host, port = endpoint[len("tcp://") :].rsplit(":", 1)
        if host not in _WILDCARD_HOSTS:
            return endpoint
        router_host = self.url[len("tcp://") :].rsplit(":", 1)[0]
        return f"tcp://{router_host}:{port}"
