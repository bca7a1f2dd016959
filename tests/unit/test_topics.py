"""Topics with no socket: the router's last-value cache (coalescing, deduplication, ttl,
limits) and the observer's fold of its ticks, with lost messages and late joiners."""

from __future__ import annotations

import random
from collections import deque

import hypothesis.strategies as st
import pytest
from hypothesis import example, given, settings
from rich.console import Console

from zmqswarm.errors import LocalProtocolError
from zmqswarm.observe.monitor import render
from zmqswarm.observe.topic_table import doing, shown_value
from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    ClientCore,
    Code,
    Hello,
    Nack,
    RouterCore,
    RouterOptions,
    topic_feed,
)
from zmqswarm.protocol.codec import decode, encode
from zmqswarm.protocol.frames import Publish, PublishItem, Welcome
from zmqswarm.protocol.observing import Connect, ObserverCore
from zmqswarm.protocol.query_frames import (
    Observe,
    ObserveTopics,
    PeerItem,
    Snapshot,
    TopicItem,
    TopicSnapshot,
    TopicTick,
    TopicValue,
    Update,
)
from zmqswarm.protocol.topic_feed import TICK_KEY, TOPIC_KEY, TopicCache, TopicView


def cache(**kw: float) -> TopicCache:
    return TopicCache(7, 0.0, interval=0.05, heartbeat=1.0, **kw)  # type: ignore[arg-type]


def frames(messages: list[list[bytes]]) -> list[tuple[TopicValue | TopicTick, bytes]]:
    out: list[tuple[TopicValue | TopicTick, bytes]] = []
    for parts in messages:
        frame = decode(parts[1])
        assert isinstance(frame, TopicValue | TopicTick)
        if isinstance(frame, TopicValue):
            assert parts[0] == TOPIC_KEY + frame.topic.encode() and len(parts) == 3
            out.append((frame, parts[2]))
        else:
            assert parts[0] == TICK_KEY and len(parts) == 2
            out.append((frame, b""))
    return out


def snapshot_pages(
    c: TopicCache, prefix: str, now: float
) -> list[tuple[TopicSnapshot, list[bytes]]]:
    pages, after = [], ""
    while True:
        header, *payloads = c.snapshot(prefix, after, ["ipc://x.pub"], now)
        page = decode(header)
        assert isinstance(page, TopicSnapshot)
        pages.append((page, payloads))
        if not page.more:
            return pages
        after = page.items[-1].topic


def fold(view: TopicView, messages: list[list[bytes]]) -> bool:
    for frame, payload in frames(messages):
        if isinstance(frame, TopicValue):
            view.apply_value(frame, payload)
        elif not view.apply_tick(frame):
            return False
    return True


def test_a_burst_to_one_topic_goes_out_once_per_tick_with_its_last_value() -> None:
    c = cache()
    c.put("build", b"0", "runner", 0, 0.0)
    first = frames(c.take(0.0))  # the first change after a quiet spell goes at once
    assert [(f.topic, p) for f, p in first if isinstance(f, TopicValue)] == [("build", b"0")]
    for i in range(1, 10_000):
        c.put("build", b"%d" % i, "runner", 0, 0.000004 * i)
        assert c.take(0.000004 * i) == []  # within the interval: coalesced
    assert c.next_deadline() == 0.05
    out = frames(c.take(0.05))
    values = [(f.topic, p) for f, p in out if isinstance(f, TopicValue)]
    assert values == [("build", b"9999")]
    tick = out[-1][0]
    assert isinstance(tick, TopicTick) and tick.tick == 2 and tick.changed == [("build", 2)]
    assert c.stats["published"] == 10_000 and c.stats["topic_values"] == 2


def test_a_value_equal_to_the_published_one_is_not_sent_again() -> None:
    c = cache()
    c.put("a", b"x", "p", 0, 0.0)
    c.take(0.0)
    c.put("a", b"y", "p", 0, 0.01)
    c.put("a", b"x", "p", 0, 0.02)  # back to what observers have
    assert c.take(0.1) == []
    c.put("a", b"x", "p", 0, 0.2)
    assert c.take(0.3) == []
    beat = frames(c.take(1.0))  # only the heartbeat tick
    assert len(beat) == 1 and isinstance(beat[0][0], TopicTick) and beat[0][0].changed == []
    c.put("a", b"x", "q", 0, 1.1)  # another publisher: a change
    assert [f.publisher for f, _ in frames(c.take(1.1)) if isinstance(f, TopicValue)] == ["q"]


def test_a_ttl_takes_a_topic_out_and_observers_see_it_go() -> None:
    c = cache()
    view = TopicView()
    view.apply_snapshot(snapshot_pages(c, "", 0.0))
    c.put("a", b"1", "p", 100, 0.0)
    c.put("b", b"2", "p", 0, 0.0)
    assert fold(view, c.take(0.0)) and set(view.values) == {"a", "b"}
    view.take_changes()
    c.put("a", b"1", "p", 100, 0.05)  # the same value: ttl renewed, nothing sent
    assert c.take(0.1) == []
    assert c.take(0.12) == []  # the first ttl was postponed
    out = c.take(0.2)
    assert fold(view, out) and set(view.values) == {"b"}
    tick = frames(out)[-1][0]
    assert isinstance(tick, TopicTick) and tick.gone == [("a", 1)]
    assert view.take_changes() == ["a"] and c.stats["topics_expired"] == 1
    assert c.nbytes == 1 and "a" not in c.entries


def test_limits_refuse_and_count() -> None:
    c = cache(max_value=4, max_topics=2, max_bytes=6)
    assert c.put("a", b"12345", "p", 0, 0.0).startswith("value of 5 bytes")
    assert c.put("bad topic", b"", "p", 0, 0.0).startswith("invalid topic")
    assert c.put("a", b"1234", "p", 0, 0.0) == ""
    assert "max_topic_bytes" in c.put("b", b"123", "p", 0, 0.0)
    assert c.put("b", b"12", "p", 0, 0.0) == ""
    assert "max_topics" in c.put("c", b"", "p", 0, 0.0)
    assert c.stats["publish_refused"] == 4 and c.stats["published"] == 6


def test_a_lost_value_or_tick_is_a_gap() -> None:
    c = cache()
    view = TopicView("a")
    view.apply_snapshot(snapshot_pages(c, "a", 0.0))
    c.put("a1", b"x", "p", 0, 0.0)
    c.put("b1", b"x", "p", 0, 0.0)
    out = c.take(0.0)
    lost_b = [m for m in out if m[0] != TOPIC_KEY + b"b1"]  # not ours: no gap
    assert fold(view, lost_b)
    c.put("a1", b"y", "p", 0, 0.1)
    out = c.take(0.1)
    assert not fold(view, out[1:])  # a1's value lost
    view.apply_snapshot(snapshot_pages(c, "a", 0.1))
    assert view.values["a1"].payload == b"y" and view.resyncs == 1
    c.put("a1", b"z", "p", 0, 0.2)
    c.take(0.2)  # a whole tick lost
    c.put("a1", b"w", "p", 0, 0.3)
    assert not fold(view, c.take(0.3))


def test_snapshot_pages_cover_every_topic_under_the_prefix_once() -> None:
    c = cache()
    for i in range(250):
        c.put(f"job/{i:03}", b"%d" % i, "p", 0, 0.0)
    c.put("other", b"", "p", 0, 0.0)
    c.put("job/new", b"", "p", 0, 0.01)  # not published yet: the next tick brings it
    c.next_at = 0.0
    c.take(0.0)
    c.put("job/late", b"", "p", 0, 0.01)
    pages = snapshot_pages(c, "job/", 0.01)
    assert [len(p.items) for p, _ in pages] == [100, 100, 51]
    topics = [item.topic for p, _ in pages for item in p.items]
    assert topics == sorted(topics) and len(set(topics)) == 251 and "job/late" not in topics
    assert all(p.tick == 1 for p, _ in pages)


@settings(max_examples=500, deadline=None)
@example(ops=[("page",), ("put", "a", b"", 0)], prefix="", seed=1, loss=0.5)  # a value lost
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(
                st.just("put"),
                st.sampled_from(["a", "a/1", "a/2", "b", "b/1"]),
                st.sampled_from([b"", b"x", b"y"]),
                st.sampled_from([0, 0, 30, 200]),
            ),
            st.tuples(st.just("time"), st.sampled_from([0.001, 0.02, 0.06, 0.5])),
            st.tuples(st.just("page")),
            st.tuples(st.just("drain")),
        ),
        max_size=80,
    ),
    prefix=st.sampled_from(["", "a", "a/", "b"]),
    seed=st.integers(0, 2**32),
    loss=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_an_observer_ends_with_exactly_the_routers_last_values(
    ops: list[tuple[object, ...]], prefix: str, seed: int, loss: float
) -> None:
    """Whatever is published, whenever the observer joins or asks for pages, and whatever PUB
    drops: once the router is quiet, the observer holds exactly the router's published values
    under its prefix, and every one it was told changed is named in its changes."""
    rng = random.Random(seed)
    old_page = topic_feed.PAGE_ITEMS
    topic_feed.PAGE_ITEMS = 2  # many pages, taken between ticks
    try:
        c = cache()
        view = TopicView(prefix)
        queue: deque[list[bytes]] = deque()
        pages: list[tuple[TopicSnapshot, list[bytes]]] = []
        syncing = True
        now = 0.0

        def publish(messages: list[list[bytes]]) -> None:
            for parts in messages:  # what the SUB's filter lets through, less what PUB drops
                if parts[0] == TICK_KEY or parts[0].startswith(TOPIC_KEY + prefix.encode()):
                    if rng.random() >= loss:
                        queue.append(parts)

        def page() -> None:
            nonlocal syncing
            after = pages[-1][0].items[-1].topic if pages else ""
            header, *payloads = c.snapshot(prefix, after, [], now)
            snap = decode(header)
            assert isinstance(snap, TopicSnapshot)
            pages.append((snap, payloads))
            if not snap.more:
                view.apply_snapshot(pages)
                pages.clear()
                syncing = False

        def drain() -> None:
            nonlocal syncing
            while queue and not syncing:
                if not fold(view, [queue.popleft()]):
                    syncing = True

        for op in ops:
            if op[0] == "put":
                _, topic, payload, ttl = op
                assert isinstance(topic, str) and isinstance(payload, bytes)
                assert isinstance(ttl, int)
                c.put(topic, payload, "p", ttl, now)
            elif op[0] == "time":
                assert isinstance(op[1], float)
                now += op[1]
            elif op[0] == "page" and syncing:
                page()
            elif op[0] == "drain":
                drain()
            publish(c.take(now))
        loss = 0.0  # the router goes quiet; what follows arrives
        for _ in range(100):
            now += 0.5
            publish(c.take(now))
            while syncing:
                page()
            drain()
            if view.synced and not queue and view.tick == c.tick:
                break  # a lost last tick shows at the next heartbeat tick
        want = {t: v for t, v in c.values().items() if t.startswith(prefix)}
        have = {t: (r.seq, r.publisher, r.payload) for t, r in view.values.items()}
        assert have == want
        assert view.tick == c.tick
    finally:
        topic_feed.PAGE_ITEMS = old_page


def test_the_router_core_takes_publishes_and_answers_for_topics() -> None:
    core = RouterCore(epoch=7, options=RouterOptions(max_topic_value=8))
    core.publish_endpoints.append("ipc://x.pub")
    ident = b"runner/1"
    hello = Hello(PROTOCOL_VERSION, "runner", 1, send_only=True)
    core.handle(ident, [encode(hello)], 0.0)
    core.take_output(0.0)
    items = [PublishItem("runner", 0), PublishItem("job/1", 5000), PublishItem("job/2")]
    core.handle(ident, [encode(Publish(items)), b"busy", b"50%", b"far too large"], 0.0)
    assert core.stats["published"] == 3 and core.stats["publish_refused"] == 1
    out = frames(core.take_topics(0.0))
    assert [(f.topic, f.publisher, p) for f, p in out if isinstance(f, TopicValue)] == [
        ("runner", "runner", b"busy"),
        ("job/1", "runner", b"50%"),
    ]
    core.handle(ident, [encode(ObserveTopics("job/"))], 0.0)
    [(to, parts, _)] = core.take_output(0.0)
    snap = decode(parts[0])
    assert to == ident and isinstance(snap, TopicSnapshot)
    assert snap.publish == ["ipc://x.pub"] and snap.tick == 1 and not snap.more
    assert [i.topic for i in snap.items] == ["job/1"] and parts[1:] == [b"50%"]
    # A Publish whose part count is wrong is refused whole; one without a session too.
    core.handle(ident, [encode(Publish(items)), b"x"], 0.0)
    core.handle(b"stranger/1", [encode(Publish(items[:1])), b"x"], 0.0)
    nacks = [(to, decode(parts[0])) for to, parts, _ in core.take_output(0.0)]
    assert [(to, n.code) for to, n in nacks if isinstance(n, Nack)] == [
        (ident, Code.BAD_FRAME),
        (b"stranger/1", Code.NOT_WELCOMED),
    ]


def published(out: list[list[bytes]]) -> list[tuple[str, int, bytes]]:
    found = []
    for parts in out:
        frame = decode(parts[0])
        if isinstance(frame, Publish):
            assert len(parts) == len(frame.items) + 1
            found += [(i.topic, i.ttl_ms, p) for i, p in zip(frame.items, parts[1:], strict=True)]
    return found


def test_a_client_publishes_at_once_and_keeps_only_the_latest_while_down() -> None:
    core = ClientCore("runner", epoch=3)
    with pytest.raises(ValueError, match="invalid topic"):
        core.publish("no spaces", b"", 0.0)
    with pytest.raises(ValueError, match="max_topic_value"):
        core.publish("big", bytes(65537), 0.0)
    core.publish("runner", b"starting", 0.0)  # before connecting: waits for a session
    assert published(core.outgoing(0.0)) == []
    core.connect(0.0)
    # After the Hello, in the same turn: the router takes it in the new session.
    out = core.outgoing(0.0)
    assert isinstance(decode(out[0][0]), Hello) and published(out) == [("runner", 0, b"starting")]
    welcome = Welcome(PROTOCOL_VERSION, 1, 1, 0, 200, 1 << 20, 1, 0, False, 800)
    core.receive([encode(welcome)], 0.0)
    core.publish("job", b"1", 0.1, ttl_ms=500)
    core.publish("job", b"2", 0.1, ttl_ms=500)  # within one turn: only the latest leaves
    assert published(core.outgoing(0.1)) == [("job", 500, b"2")]
    core.link_down(0.2)
    for i in range(1000):
        core.publish("job", b"%d" % i, 0.2)
    assert published(core.outgoing(0.2)) == []
    core.link_up(0.3)
    assert published(core.outgoing(0.3)) == [("job", 0, b"999")]
    core.close(0.4)
    with pytest.raises(LocalProtocolError):
        core.publish("job", b"", 0.4)


def test_one_fold_follows_state_and_topics_and_asks_again_after_a_gap() -> None:
    """ObserverCore against a RouterCore, no socket: the sync conversation (subscribe first,
    then ask again), the feed folded, a lost tick healed by a new TopicSnapshot."""
    router = RouterCore(epoch=7, started=0.0)
    router.publish_endpoints.append("ipc://r.pub")
    runner = b"runner/1"
    router.handle(runner, [encode(Hello(PROTOCOL_VERSION, "runner", 1))], 0.0)
    admin = b"admin/1"
    router.handle(admin, [encode(Hello(PROTOCOL_VERSION, "admin", 1, send_only=True))], 0.0)
    router.take_output(0.0)
    observer = ObserverCore("ipc://r", topics="job/")

    def sync(now: float) -> list[object]:
        steps: list[object] = []
        plan, answer = observer.sync(), None
        while True:
            try:
                step = plan.send(answer)
            except StopIteration:
                return steps
            steps.append(step)
            if isinstance(step, Connect):
                answer = None
            else:
                router.handle(admin, [encode(step)], now)
                [(_, parts, _)] = router.take_output(now)
                answer = (decode(parts[0]), parts[1:])

    def publish(now: float, **values: bytes) -> list[list[bytes]]:
        items = [PublishItem(topic.replace("_", "/")) for topic in values]
        router.handle(runner, [encode(Publish(items)), *values.values()], now)
        feed = [[encode(u)] for u in router.take_updates(now)]
        return feed + router.take_topics(now)

    publish(0.0, job_1=b"a", other=b"x")
    steps = sync(0.0)
    assert [type(s).__name__ for s in steps] == [
        "Observe", "ObserveTopics", "Connect", "Observe", "ObserveTopics",
    ]  # fmt: skip
    assert observer.connected == ["ipc://r.pub"] and observer.subscriptions() == [b""]
    assert observer.topics is not None and observer.state.synced
    view = observer.topics
    assert {t: r.payload for t, r in view.values.items()} == {"job/1": b"a"}
    for parts in publish(0.1, job_1=b"b", job_2=b"c"):
        assert observer.receive(parts)
    assert {t: r.payload for t, r in view.values.items()} == {"job/1": b"b", "job/2": b"c"}
    assert "runner" in observer.state.peers
    publish(0.2, job_1=b"d")  # a whole tick lost
    feed = publish(0.3, job_2=b"e")
    assert not all(observer.receive(parts) for parts in feed)
    assert observer.stale == {"topics"}
    assert [type(s).__name__ for s in sync(0.3)] == ["ObserveTopics"]  # the topics only
    assert {t: r.payload for t, r in view.values.items()} == {"job/1": b"d", "job/2": b"e"}
    assert view.resyncs == 1 and observer.stale == set() and observer.bad_updates == 0
    assert observer.receive([b"\xc1"]) and observer.bad_updates == 1


def test_the_monitor_shows_topics_beside_peers_at_a_fixed_width() -> None:
    """A recorded stream (a Snapshot, an Update, a TopicSnapshot, a tick) folded, then drawn
    at 100 columns without colour: each peer with its pane state and what it last published
    under its own name, and the topics under a prefix, sorted."""
    core = ObserverCore("ipc://r", topics="")
    alice = PeerItem("alice", True, 1, 0, 0, 0, "live %3")
    bob = PeerItem("bob", False, 0, 0, 2, 0, "")
    snap = Snapshot(0x1F, 3, 5000, ["ipc://r.pub"], [alice], {"accepted": 2}, 1000)
    items = [TopicItem("alice", 4, "alice"), TopicItem("build/1", 2, "runner")]
    page = TopicSnapshot(0x1F, 7, 5000, ["ipc://r.pub"], items, False, 1000)
    plan = core.sync(subscribe=False)
    assert isinstance(next(plan), Observe)
    assert isinstance(plan.send((snap, [])), ObserveTopics)
    with pytest.raises(StopIteration):
        plan.send((page, [b"reviewing PR 12\nline two", b"40%"]))
    assert core.receive([encode(Update(0x1F, 4, 5250, [bob], [], {"accepted": 3}))])
    value = TopicValue(0x1F, 8, "build/2", 5, "runner")
    assert core.receive([b"tbuild/2", encode(value), bytes(range(250, 256))])
    assert core.receive([b"T", encode(TopicTick(0x1F, 8, 5300, [("build/2", 5)], []))])
    console = Console(record=True, width=100, color_system=None)
    console.print(
        render(core.state, url="ipc://r", topics=core.topics, prefix="build/", sort="recent")
    )
    text = console.export_text()
    rows = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "live %3" in rows["alice"] and "reviewing PR 12⏎line two" in rows["alice"]
    assert "offline" in rows["bob"] and rows["bob"].split()[2] == "2"  # queued
    lines = [line.rstrip() for line in text.splitlines()]
    at = lines.index("topics build/* · 2 · by recent")  # between the figures and the names
    assert lines[at + 1 : at + 5] == [
        " topic   ┃ value                    ┃ publisher ┃ seq",
        "━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━",
        " build/2 │ \\xfa\\xfb\\xfc\\xfd\\xfe\\xff │ runner    │   5",
        " build/1 │ 40%                      │ runner    │   2",
    ]
    assert at < next(i for i, line in enumerate(lines) if line.startswith("alice"))
    assert shown_value(b"x" * 100, 10) == "xxxxxxxxx…"
    assert doing(None, "alice") == "" and doing(core.topics, "carol") == ""
    state_only = Console(record=True, width=100, color_system=None)
    state_only.print(render(core.state, url="ipc://r"))
    assert "doing" not in state_only.export_text() and "topics" not in state_only.export_text()


def test_a_restarted_router_is_given_the_clients_last_values_again() -> None:
    core = ClientCore("runner", epoch=3)
    core.connect(0.0)
    core.outgoing(0.0)
    core.receive([encode(Welcome(PROTOCOL_VERSION, 1, 1, 0, 200, 1 << 20, 1))], 0.0)
    core.publish("runner", b"a", 0.0)
    core.publish("job", b"1", 0.0, ttl_ms=9000)
    core.outgoing(0.0)
    core.publish("job", b"2", 0.0, ttl_ms=9000)
    core.outgoing(0.0)
    core.link_down(1.0)
    core.link_up(1.1)  # the same router: its cache still holds them, nothing again
    core.outgoing(1.1)
    core.receive([encode(Welcome(PROTOCOL_VERSION, 1, 2, 0, 200, 1 << 20, 2, resumed=True))], 1.1)
    assert published(core.outgoing(1.1)) == []
    core.link_down(2.0)
    core.link_up(2.1)
    core.publish("runner", b"b", 2.1)  # newer than what was published: it wins
    hello = core.outgoing(2.1)
    assert published(hello) == [("runner", 0, b"b")]
    core.receive([encode(Welcome(PROTOCOL_VERSION, 2, 1, 0, 200, 1 << 20, 3))], 2.1)
    assert sorted(published(core.outgoing(2.1))) == [("job", 9000, b"2"), ("runner", 0, b"b")]
