"""What both observers are, minus how they wait: the ObserverCore they drive, the SUB socket
and how it is (re)connected, what is folded in from it, and when silence means "ask again".
``Observer`` (observer.py) and ``AsyncObserver`` (aio.py) add only how they wait for the SUB
socket and for the router's answers."""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import zmq

from zmqswarm.protocol import (
    Observe,
    ObserveTopics,
    Snapshot,
    TopicRecord,
    TopicSnapshot,
    TopicView,
    WatchedState,
)
from zmqswarm.protocol.observing import Answer, Connect, ObserverCore, Step
from zmqswarm.transport import peer_keys, peer_limits, resolve_router_url

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

__all__ = ["BaseObserver", "answer_kind"]

_TAKE = 10_000  # PUB messages folded in before the watcher is shown the state


class BaseObserver:
    def __init__(
        self,
        router: str | None = None,
        *,
        state: bool = True,
        topics: str | None = None,
        timeout: float = 5.0,
        context: zmq.Context[Any] | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        if not state and topics is None:
            raise ValueError("nothing to observe: state=False and no topics")
        self.url = resolve_router_url(router)
        self.keys = peer_keys(curve)
        self.timeout = timeout
        self._ctx = context or zmq.Context.instance()
        self.core = ObserverCore(self.url, state=state, topics=topics)
        self.silent = False  # the router said nothing for 3 heartbeats

    @property
    def state(self) -> WatchedState:
        """The router's state: its peers, counters and rates (empty with ``state=False``)."""
        return self.core.state

    @property
    def topics(self) -> TopicView:
        """The topics under the prefix given as ``topics`` (ValueError without one)."""
        view = self.core.topics
        if view is None:
            raise ValueError("this observer follows no topics: Observer(..., topics=PREFIX)")
        return view

    def values(self) -> dict[str, TopicRecord]:
        """The topics' values now, by name."""
        return self.topics.values

    @property
    def bad_updates(self) -> int:
        """PUB messages that were not the router's (undecodable, or of an unknown kind)."""
        return self.core.bad_updates

    def _open_sub(self) -> zmq.Socket[bytes]:
        sub: zmq.Socket[bytes] = self._ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        # A snapshot of many pages takes a while: what the feed brings meanwhile waits here.
        sub.setsockopt(zmq.RCVHWM, 100_000)
        peer_limits(sub, 1 << 20)
        if self.keys is not None:
            from zmqswarm.keys import secure_client

            secure_client(sub, self.keys)  # the feed is the router's state: not for everyone
        for prefix in self.core.subscriptions():
            sub.setsockopt(zmq.SUBSCRIBE, prefix)
        self.core.connected = []
        return sub

    def _question(
        self, plan: Generator[Step, Answer | None, None], answer: Answer | None,
        sub: zmq.Socket[bytes] | None,
    ) -> Observe | ObserveTopics | None:  # fmt: skip
        """Step a snapshot conversation (ObserverCore.sync) with ``answer``: the next
        question to ask the router, None once it is over. Connects the SUB on its way."""
        while True:
            try:
                step = plan.send(answer)
            except StopIteration:
                return None
            if not isinstance(step, Connect):
                return step
            self._connect(sub, step)
            answer = None

    def _connect(self, sub: zmq.Socket[bytes] | None, step: Connect) -> None:
        if sub is None:
            return
        for url in self.core.connected:
            sub.disconnect(url)
        for url in step.endpoints:
            sub.connect(url)

    def _take(self, sub: zmq.Socket[bytes]) -> bool:
        """Fold in what the SUB holds; False if a feed lost its place (ask again)."""
        receive = self.core.receive
        for _ in range(_TAKE):
            try:
                parts = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return True
            if not receive(parts):
                return False
        return True

    def _quiet(self, quiet: float) -> bool:
        """Nothing came for ``quiet`` seconds: whether to ask the router again now (it
        publishes nothing and must be polled, or it is silent past 3 heartbeats)."""
        if not self.core.connected:
            return True
        if quiet > 3 * self.core.heartbeat:
            self.silent = True
            self.core.lose_sync()
            return True
        return False


def answer_kind(question: Observe | ObserveTopics) -> type[Snapshot] | type[TopicSnapshot]:
    return Snapshot if isinstance(question, Observe) else TopicSnapshot
