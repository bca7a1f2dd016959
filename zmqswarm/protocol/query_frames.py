"""The frames of those who ask and watch: one-shot queries (dead letters, peers) and the
observers' feed (a Snapshot, then numbered Updates; topic pages, values and ticks).

Same rules as frames.py: msgspec Structs, array-like, tagged; fields only ever appended.
"""

from __future__ import annotations

import msgspec

from .frames import Frame

__all__ = [
    "DeadItem",
    "DeadList",
    "ListDead",
    "ListPeers",
    "Observe",
    "ObserveTopics",
    "PeerItem",
    "PeerList",
    "Snapshot",
    "TopicItem",
    "TopicSnapshot",
    "TopicTick",
    "TopicValue",
    "Update",
]


class ListDead(Frame, tag=13, frozen=True):
    """Peer → router: list dead letters with id > ``after``, at most ``limit``; first forget
    those with id ≤ ``drop_upto`` (0: none)."""

    after: int = 0
    limit: int = 100
    drop_upto: int = 0


class DeadItem(msgspec.Struct, array_like=True, frozen=True):
    """One dead letter: ``id`` numbers them in the router's lifetime; ``to`` was its
    recipient; (sender, epoch, seq) its ticket; ``code`` why it died; ``age_ms`` how long ago."""

    id: int
    to: str
    sender: str
    epoch: int
    seq: int
    code: int
    age_ms: int


class DeadList(Frame, tag=14, frozen=True):
    """Router → peer, the answer to ListDead, followed by one payload part per item. ``total``
    is how many dead letters the router holds; ``dropped`` how many it had to forget for
    room (``dead_max``) since it started."""

    items: list[DeadItem]
    total: int
    dropped: int = 0


class ListPeers(Frame, tag=15, frozen=True):
    """Peer → router: who is connected, and what waits for whom."""


class PeerItem(msgspec.Struct, array_like=True, frozen=True):
    """One name the router knows: connected (``online``, its ``epoch``, ms since it was last
    heard from) or not, its mailbox (``queued`` not yet sent, ``inflight`` sent, unacked),
    the ``state`` its session last reported with PeerState ("" if none), and how long the
    mailbox's oldest message has waited since the router accepted it (``waiting_ms``, 0 if
    the mailbox is empty): a recipient that takes nothing shows here first."""

    name: str
    online: bool
    epoch: int
    idle_ms: int
    queued: int
    inflight: int
    state: str = ""
    waiting_ms: int = 0


class PeerList(Frame, tag=16, frozen=True):
    """Router → peer, the answer to ListPeers (receiving sessions and non-empty mailboxes)."""

    items: list[PeerItem]


class Observe(Frame, tag=18, frozen=True):
    """Peer → router: a Snapshot of the state observers watch, and where Updates follow."""


class Snapshot(Frame, tag=19, frozen=True):
    """Router → peer, the answer to Observe: the state as of Update number ``seq`` of router
    incarnation ``router_epoch``, and the PUB endpoints that carry the Updates after it. An
    observer subscribes first, then asks, then applies only Updates numbered after ``seq``
    (the ZeroMQ Guide's Clone pattern). ``at_ms``: the router's clock, ms since it started.
    ``stats``: its counters since it started (accepted, delivered, acked, dead...).
    ``heartbeat_ms``: the longest the router stays silent on PUB while it lives."""

    router_epoch: int
    seq: int
    at_ms: int
    publish: list[str]
    peers: list[PeerItem]
    stats: dict[str, int]
    heartbeat_ms: int


class Update(Frame, tag=20, frozen=True):
    """Router → PUB, at most every ``publish_interval`` and only when something changed (or a
    ``publish_heartbeat`` passed): the rows that changed (whole rows: applying one twice is
    harmless), the names that left, all counters. Numbered from 1 per router incarnation; a
    number skipped means an Update was lost: ask for a Snapshot again. A row's ``idle_ms``
    and ``waiting_ms`` are as of its last change: rows are not re-sent only because time
    passed. ``latency_us``: accept → ack times of the messages acked since the previous
    Update (``n``, ``p50``, ``p90``, ``p99``, ``max``, each at most 1/8 over the truth), {}
    if none was."""

    router_epoch: int
    seq: int
    at_ms: int
    peers: list[PeerItem]
    gone: list[str]
    stats: dict[str, int]
    latency_us: dict[str, int] = {}


class ObserveTopics(Frame, tag=22, frozen=True):
    """Peer → router: a page of the topics whose names start with ``prefix`` and sort after
    ``after`` (a TopicSnapshot)."""

    prefix: str = ""
    after: str = ""


class TopicItem(msgspec.Struct, array_like=True, frozen=True):
    """One topic in a TopicSnapshot: its name, the ``seq`` the router stamped on the value when
    it published it, and the name of the session that published it."""

    topic: str
    seq: int
    publisher: str


class TopicSnapshot(Frame, tag=23, frozen=True):
    """Router → peer, the answer to ObserveTopics, followed by one payload part per item: the
    topics (in name order) as of TopicTick number ``tick``. ``more``: further topics follow the
    last item; ask again with ``after`` set to its name. ``publish`` and ``heartbeat_ms`` as in
    Snapshot (a TopicTick comes at least every ``heartbeat_ms``)."""

    router_epoch: int
    tick: int
    at_ms: int
    publish: list[str]
    items: list[TopicItem]
    more: bool
    heartbeat_ms: int


class TopicValue(Frame, tag=24, frozen=True):
    """Router → PUB, after a subscription part ``t`` + the topic's UTF-8 name and before the
    payload part: a topic's new value, published with TopicTick number ``tick`` (which follows
    it). ``seq`` numbers published values per router incarnation, across topics."""

    router_epoch: int
    tick: int
    topic: str
    seq: int
    publisher: str


class TopicTick(Frame, tag=25, frozen=True):
    """Router → PUB, after a subscription part ``T``: the end of a tick. Numbered from 1 per
    router incarnation, one at most every ``topic_interval`` when a topic changed and at least
    every ``heartbeat_ms``. ``changed``: every (topic, seq) published in this tick, whose
    TopicValues came before it; ``gone``: the topics whose ttl ran out, with the seq of the
    value that left. A tick number skipped, or a changed topic whose value did not come, is a
    gap: ask for a TopicSnapshot again."""

    router_epoch: int
    tick: int
    at_ms: int
    changed: list[tuple[str, int]]
    gone: list[tuple[str, int]]
