"""A client's topic values on their way to the router: the latest per topic, sent as one
Publish frame at most every ``delay`` seconds, and remembered so that a restarted router
(whose cache is empty) is given them again. Sans-IO, like the client core that owns it."""

from __future__ import annotations

from .codec import MAX_BATCH, encode
from .frames import Publish, PublishItem
from .topic_feed import TOPIC_RULE, valid_topic

__all__ = ["Publishing"]


class Publishing:
    def __init__(self, max_value: int, delay: float) -> None:
        self.max_value = max_value
        self.delay = delay
        self.pending: dict[str, tuple[bytes, int]] = {}  # topic -> latest (value, ttl_ms)
        self._published: dict[str, tuple[bytes, int]] = {}  # what the router was last given
        self.due = 0.0  # when the next Publish frame may leave

    def put(self, topic: str, payload: bytes, ttl_ms: int) -> None:
        if not valid_topic(topic):
            raise ValueError(f"invalid topic {topic!r}: {TOPIC_RULE}")
        if len(payload) > self.max_value:
            limit = self.max_value
            raise ValueError(f"topic value of {len(payload)} bytes > max_topic_value {limit}")
        if ttl_ms < 0:
            raise ValueError(f"ttl of {ttl_ms} ms: a ttl is positive (0: none)")
        self.pending[topic] = (payload, ttl_ms)

    def frames(self, now: float, *, now_or_never: bool = False) -> list[list[bytes]]:
        """The Publish frames to send now: what waits, once ``delay`` has passed since the
        last (or at once, ``now_or_never``: the client closes)."""
        if not self.pending or (now < self.due and not now_or_never):
            return []
        pending = list(self.pending.items())
        self._published.update(self.pending)
        self.pending.clear()
        self.due = now + self.delay
        out = []
        for start in range(0, len(pending), MAX_BATCH):
            batch = pending[start : start + MAX_BATCH]
            items = [PublishItem(topic, ttl_ms) for topic, (_, ttl_ms) in batch]
            out.append([encode(Publish(items)), *(value for _, (value, _) in batch)])
        return out

    def router_restarted(self) -> None:
        """A new router knows no topic: ours go again (each ttl starts again)."""
        self.pending = {**self._published, **self.pending}
