"""Topics, sans-IO: the router's last-value cache (``TopicCache``) and the observer's fold of
it (``TopicView``): the server and client halves of the ZeroMQ Guide's Clone pattern.

A peer publishes the latest value of a topic (``Publish``, no answer). The router keeps the
last value per topic and, once per ``interval`` at most, publishes on PUB what changed since
the previous tick: one ``TopicValue`` per changed topic (after a subscription part ``t`` +
the topic, so that a SUB socket filters by topic prefix), then one numbered ``TopicTick``
that lists every (topic, seq) it carried and the topics whose ttl ran out. So a burst to
one topic costs observers one value per tick (coalesced), and a value equal to the one last
published costs nothing (deduplicated).

PUB drops what a slow subscriber cannot take, so an observer checks every tick: its number
follows the previous one, and every changed topic under its prefix came with a value at least
as new. Otherwise it asks for a ``TopicSnapshot`` again (the pages of it are as of a tick)
and carries on from there. A value is applied only if its ``seq`` is newer than the one held,
so pages and values taken in any order fold into the same state.
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from .codec import encode
from .query_frames import TopicItem, TopicSnapshot, TopicTick, TopicValue

__all__ = [
    "MAX_TOPIC",
    "TICK_KEY",
    "TOPIC_KEY",
    "TOPIC_RULE",
    "TopicCache",
    "TopicRecord",
    "TopicView",
    "valid_topic",
]

MAX_TOPIC = 256  # characters in a topic name
TOPIC_KEY = b"t"  # the subscription part of a TopicValue: this, then the topic's UTF-8 name
TICK_KEY = b"T"  # the subscription part of a TopicTick
PAGE_ITEMS = 100  # topics in one TopicSnapshot: its header stays far below MAX_HEADER
PAGE_BYTES = 4 << 20  # payload bytes in one TopicSnapshot (at least one topic)
INF = float("inf")

# The name rule, longer: every peer name is a topic (a peer publishes under its own name).
_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+\-]*\Z")
TOPIC_RULE = (
    f"a topic is 1 to {MAX_TOPIC} characters: a letter or digit, then letters, digits"
    " and . _ : @ / + -"
)

COUNTERS = (
    "published",  # topic values taken from Publish frames
    "publish_refused",  # topic values refused: bad topic, too large, the cache full
    "topic_values",  # values published to observers (after coalescing and deduplication)
    "topics_expired",  # topics whose ttl ran out
)


def valid_topic(topic: str) -> bool:
    return 0 < len(topic) <= MAX_TOPIC and _TOPIC.match(topic) is not None


class _Entry:
    """One topic: the latest value taken, and the one last published (``seq`` 0: never)."""

    __slots__ = ("expires", "payload", "publisher", "scheduled", "sent", "sent_publisher", "seq")

    def __init__(self, payload: bytes, publisher: str, expires: float) -> None:
        self.payload = payload
        self.publisher = publisher
        self.expires = expires
        self.scheduled = INF  # when its one entry in the expiry heap falls due (INF: none)
        self.sent = b""
        self.sent_publisher = ""
        self.seq = 0


class TopicCache:
    """The router's half: the last value per topic, published coalesced and deduplicated.

    ``stats`` is the router's counter dict: the cache keeps ``COUNTERS`` in it."""

    def __init__(
        self,
        router_epoch: int,
        started: float,
        *,
        interval: float = 0.05,
        heartbeat: float = 1.0,
        max_value: int = 64 << 10,
        max_topics: int = 10_000,
        max_bytes: int = 64 << 20,
        stats: dict[str, int] | None = None,
    ) -> None:
        self.router_epoch = router_epoch
        self.started = started
        self.interval = interval
        self.heartbeat = heartbeat
        self.max_value = max_value
        self.max_topics = max_topics
        self.max_bytes = max_bytes
        self.stats = stats if stats is not None else {}
        for key in COUNTERS:
            self.stats.setdefault(key, 0)
        self.entries: dict[str, _Entry] = {}
        self.nbytes = 0  # latest payloads held
        self.tick = 0  # the last TopicTick made
        self.seq = 0  # the last value published
        self.next_at = started  # no tick before this
        self._dirty: dict[str, None] = {}  # topics whose latest value is not the published one
        self._ticked_at = started
        self._expiry: list[tuple[float, str]] = []  # (when, topic); stale ones skipped
        self._order: list[str] | None = []  # topic names, sorted (None: to sort again)

    # -- input ----------------------------------------------------------------------------

    def put(self, topic: str, payload: bytes, publisher: str, ttl_ms: int, now: float) -> str:
        """Take a value; "" if taken, else why it was refused (counted, never answered)."""
        stats = self.stats
        stats["published"] += 1
        size = len(payload)
        entry = self.entries.get(topic)
        if entry is None:
            why = ""
            if not valid_topic(topic):
                why = f"invalid topic {topic[:MAX_TOPIC]!r}: {TOPIC_RULE}"
            elif len(self.entries) >= self.max_topics:
                why = f"topic {topic!r} refused: {self.max_topics} topics held (max_topics)"
            elif size > self.max_value:
                why = f"value of {size} bytes > max_topic_value {self.max_value}"
            elif self.nbytes + size > self.max_bytes:
                why = f"topic {topic!r} refused: {self.nbytes} bytes held (max_topic_bytes)"
            if why:
                stats["publish_refused"] += 1
                return why
            entry = self.entries[topic] = _Entry(payload, publisher, INF)
            self._order = None
            self.nbytes += size
        else:
            grown = size - len(entry.payload)
            if size > self.max_value or self.nbytes + grown > self.max_bytes:
                stats["publish_refused"] += 1
                why = "max_topic_value, max_topic_bytes"
                return f"value of {size} bytes for {topic!r} refused ({why})"
            self.nbytes += grown
            entry.payload = payload
            entry.publisher = publisher
        if ttl_ms > 0:
            entry.expires = expires = now + ttl_ms / 1000
            if expires < entry.scheduled:  # else the earlier one, when due, schedules again
                entry.scheduled = expires
                heapq.heappush(self._expiry, (expires, topic))
        else:
            entry.expires = INF
        if entry.seq and payload == entry.sent and publisher == entry.sent_publisher:
            self._dirty.pop(topic, None)  # back to what observers have: nothing to send
        else:
            self._dirty[topic] = None
        return ""

    # -- output ---------------------------------------------------------------------------

    def next_deadline(self) -> float:
        """When ``take`` has something to do (a tick, an expiry, a heartbeat)."""
        due = self._ticked_at + self.heartbeat
        if self._dirty:
            due = min(due, self.next_at)
        if self._expiry:
            due = min(due, max(self._expiry[0][0], self.next_at))
        return due

    def take(self, now: float) -> list[list[bytes]]:
        """The PUB messages of a tick, if one is due: each changed topic's TopicValue, then
        the TopicTick. At most one tick per ``interval``; none when nothing changed, except
        a heartbeat tick every ``heartbeat``. Asked every turn: cheap when idle."""
        if now < self.next_at:
            return []
        expiry = self._expiry
        expiring = bool(expiry) and expiry[0][0] <= now
        if not self._dirty and not expiring and now - self._ticked_at < self.heartbeat:
            return []
        gone = self._expire(now) if expiring else []
        if not self._dirty and not gone and now - self._ticked_at < self.heartbeat:
            return []  # the expiries due were postponed by later publishes
        tick = self.tick + 1
        out: list[list[bytes]] = []
        changed: list[tuple[str, int]] = []
        epoch, entries = self.router_epoch, self.entries
        for topic in self._dirty:
            entry = entries[topic]
            self.seq += 1
            entry.seq = self.seq
            entry.sent, entry.sent_publisher = entry.payload, entry.publisher
            header = encode(TopicValue(epoch, tick, topic, self.seq, entry.publisher))
            out.append([TOPIC_KEY + topic.encode(), header, entry.payload])
            changed.append((topic, self.seq))
        self._dirty.clear()
        self.stats["topic_values"] += len(changed)
        self.tick = tick
        at_ms = int((now - self.started) * 1000)
        out.append([TICK_KEY, encode(TopicTick(epoch, tick, at_ms, changed, gone))])
        self._ticked_at = now
        self.next_at = now + self.interval
        return out

    def _expire(self, now: float) -> list[tuple[str, int]]:
        gone = []
        expiry, entries = self._expiry, self.entries
        while expiry and expiry[0][0] <= now:
            at, topic = heapq.heappop(expiry)
            entry = entries.get(topic)
            if entry is None or entry.scheduled != at:
                continue  # not this entry's (the topic left and came back)
            if entry.expires > now:  # published again since: a later ttl, or none
                entry.scheduled = entry.expires
                if entry.expires < INF:
                    heapq.heappush(expiry, (entry.expires, topic))
                continue
            del entries[topic]
            self._order = None
            self.nbytes -= len(entry.payload)
            self._dirty.pop(topic, None)
            self.stats["topics_expired"] += 1
            if entry.seq:
                gone.append((topic, entry.seq))
        return gone

    def snapshot(self, prefix: str, after: str, publish: list[str], now: float) -> list[bytes]:
        """A TopicSnapshot page and its payload parts: the published values of the topics
        that start with ``prefix`` and sort after ``after``, as of the last tick."""
        order = self._order
        if order is None:
            order = self._order = sorted(self.entries)
        i = bisect_left(order, prefix)
        if after:
            i = max(i, bisect_right(order, after))
        items: list[TopicItem] = []
        payloads: list[bytes] = []
        size, more, entries = 0, False, self.entries
        while i < len(order) and order[i].startswith(prefix):
            if len(items) >= PAGE_ITEMS or size >= PAGE_BYTES:
                more = True
                break
            topic = order[i]
            entry = entries[topic]
            if entry.seq:  # a topic never published yet is in the next tick
                items.append(TopicItem(topic, entry.seq, entry.sent_publisher))
                payloads.append(entry.sent)
                size += len(entry.sent)
            i += 1
        at_ms = int((now - self.started) * 1000)
        heartbeat_ms = int(self.heartbeat * 1000)
        snap = TopicSnapshot(
            self.router_epoch, self.tick, at_ms, publish, items, more, heartbeat_ms
        )
        return [encode(snap), *payloads]

    def values(self) -> dict[str, tuple[int, str, bytes]]:
        """What observers should hold now: topic -> (seq, publisher, payload) as published."""
        return {t: (e.seq, e.sent_publisher, e.sent) for t, e in self.entries.items() if e.seq}


@dataclass(frozen=True, slots=True)
class TopicRecord:
    """A topic's value as an observer holds it."""

    topic: str
    seq: int
    publisher: str
    payload: bytes


class TopicView:
    """The observer's half: the values of the topics under ``prefix`` as of TopicTick
    ``tick``. ``apply_tick`` says False when it cannot follow on: ask for a TopicSnapshot.
    ``take_changes`` names the topics whose value changed or left since it was last asked
    (each once, however often it changed: a consumer reads the value it has now)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.router_epoch = 0
        self.tick = -1  # no TopicSnapshot yet: every tick is refused
        self.at_ms = 0
        self.heartbeat = 1.0
        self.values: dict[str, TopicRecord] = {}
        self.resyncs = 0  # TopicSnapshots taken after the first: gaps, restarts
        self.changes: dict[str, None] = {}

    @property
    def synced(self) -> bool:
        return self.tick >= 0

    def apply_snapshot(self, pages: list[tuple[TopicSnapshot, list[bytes]]]) -> None:
        """Take every page of one TopicSnapshot (the first page's tick is the state's)."""
        first = pages[0][0]
        if self.router_epoch:
            self.resyncs += 1
        values: dict[str, TopicRecord] = {}
        for page, payloads in pages:
            for item, payload in zip(page.items, payloads, strict=True):
                if not item.topic.startswith(self.prefix):
                    continue
                held = values.get(item.topic)
                if held is None or held.seq < item.seq:
                    values[item.topic] = TopicRecord(item.topic, item.seq, item.publisher, payload)
        old = self.values
        for topic in old.keys() | values.keys():
            was, now = old.get(topic), values.get(topic)
            if was is None or now is None or was.seq != now.seq:
                self.changes[topic] = None
        self.values = values
        self.router_epoch = first.router_epoch
        self.tick = first.tick
        self.at_ms = first.at_ms
        self.heartbeat = first.heartbeat_ms / 1000

    def apply_value(self, value: TopicValue, payload: bytes) -> None:
        """A TopicValue from PUB: kept if newer than the one held (its tick checks it)."""
        if (
            not self.synced
            or value.router_epoch != self.router_epoch
            or value.tick <= self.tick
            or not value.topic.startswith(self.prefix)
        ):
            return
        held = self.values.get(value.topic)
        if held is None or held.seq < value.seq:
            record = TopicRecord(value.topic, value.seq, value.publisher, payload)
            self.values[value.topic] = record
            self.changes[value.topic] = None

    def apply_tick(self, tick: TopicTick) -> bool:
        """Close a tick: False (and unsynced) if a tick or a value under the prefix was
        lost, or another router incarnation sent it. Older ticks are ignored (True)."""
        if not self.synced or tick.router_epoch != self.router_epoch:
            self.lose_sync()
            return False
        if tick.tick <= self.tick:
            return True
        prefix, values = self.prefix, self.values
        if tick.tick != self.tick + 1:
            self.lose_sync()
            return False
        for topic, seq in tick.changed:
            if topic.startswith(prefix):
                held = values.get(topic)
                if held is None or held.seq < seq:
                    self.lose_sync()
                    return False
        for topic, seq in tick.gone:
            held = values.get(topic)
            if held is not None and held.seq <= seq:
                del values[topic]
                self.changes[topic] = None
        self.tick = tick.tick
        self.at_ms = tick.at_ms
        return True

    def lose_sync(self) -> None:
        self.tick = -1

    def take_changes(self) -> list[str]:
        changes = list(self.changes)
        self.changes.clear()
        return changes
