"""The observers' protocol with no socket: the router's StatePublisher, the observer's
WatchedState, RouterCore answering Observe, and the monitor's picture."""

from __future__ import annotations

import math

import hypothesis.strategies as st
from hypothesis import given, settings
from rich.console import Console

from zmqswarm.observe.monitor import render
from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Hello,
    LatencyWindow,
    Observe,
    PeerItem,
    RouterCore,
    Send,
    SendItem,
    Snapshot,
    StatePublisher,
    Update,
    WatchedState,
    Welcome,
    decode,
    encode,
)

STATS = {"accepted": 0}


def row(name: str, queued: int = 0, *, online: bool = True, idle: int = 0) -> PeerItem:
    return PeerItem(name, online, 7, idle, queued, 0, "")


def publisher() -> StatePublisher:
    return StatePublisher(router_epoch=9, started=0.0, interval=0.25, heartbeat=1.0)


def test_updates_are_debounced_and_carry_only_what_changed() -> None:
    pub = publisher()
    first = pub.update([row("a"), row("b")], STATS, 0.0)
    assert first is not None and first.seq == 1 and [r.name for r in first.peers] == ["a", "b"]
    assert pub.update([row("a", 1), row("b")], STATS, 0.1) is None  # within the interval
    second = pub.update([row("a", 1), row("b")], STATS, 0.25)
    assert second is not None and second.seq == 2
    assert second.peers == [row("a", 1)] and second.gone == []
    third = pub.update([row("a", 1)], {"accepted": 1}, 0.5)
    assert third is not None and third.peers == [] and third.gone == ["b"]
    assert third.stats == {"accepted": 1}


def test_time_passing_alone_sends_only_heartbeats() -> None:
    pub = publisher()
    assert pub.update([row("a")], STATS, 0.0) is not None
    assert pub.update([row("a", idle=250)], STATS, 0.25) is None  # idle_ms moves: not a change
    assert pub.update([row("a", idle=750)], STATS, 0.75) is None
    beat = pub.update([row("a", idle=1000)], STATS, 1.0)
    assert beat is not None and beat.seq == 2 and beat.peers == [] and beat.gone == []


def test_a_snapshot_is_of_a_published_state() -> None:
    pub = publisher()
    pub.update([row("a")], STATS, 0.0)
    # Changed since the last Update: the Snapshot publishes it first, and is numbered after.
    snap, catch_up = pub.snapshot([row("a", 5)], STATS, ["ipc://x.pub"], 0.1)
    assert catch_up is not None and catch_up.seq == 2 and catch_up.peers == [row("a", 5)]
    assert snap.seq == 2 and snap.peers == [row("a", 5)] and snap.publish == ["ipc://x.pub"]
    # Nothing changed since: no catch-up, the same number.
    again, nothing = pub.snapshot([row("a", 5)], STATS, [], 0.2)
    assert nothing is None and again.seq == 2


def fold(snap: Snapshot, *updates: Update) -> WatchedState:
    state = WatchedState()
    state.apply_snapshot(snap)
    for update in updates:
        assert state.apply(update)
    return state


def test_a_watcher_refuses_a_gap_and_another_incarnation() -> None:
    pub = publisher()
    u1 = pub.update([row("a")], STATS, 0.0)
    snap, _ = pub.snapshot([row("a")], STATS, [], 0.1)
    u2 = pub.update([row("a", 1)], STATS, 0.25)
    u3 = pub.update([row("a", 2)], STATS, 0.5)
    assert u1 and u2 and u3
    state = fold(snap)
    assert state.apply(u1)  # older than the Snapshot: ignored
    assert state.peers["a"].queued == 0
    assert not state.apply(u3)  # u2 was lost
    assert not state.synced and not state.apply(u2)  # unsynced until a new Snapshot
    other = Update(router_epoch=10, seq=3, at_ms=0, peers=[], gone=[], stats={})
    state = fold(snap, u2)
    assert not state.apply(other)


def test_rates_come_from_the_counts_between_updates() -> None:
    pub = publisher()
    snap, _ = pub.snapshot([], {"accepted": 0}, [], 0.0)
    update = pub.update([], {"accepted": 500}, 0.5)
    assert update is not None
    state = fold(snap, update)
    assert state.rates == {"accepted": 1000.0}


# One step of the world: the router's rows change, time passes (an Update may go out), or
# an observer joins with a Snapshot. Observers may miss Updates (PUB drops at will).
names = st.sampled_from(["a", "b", "c"])
steps = st.lists(
    st.one_of(
        st.tuples(st.just("set"), names, st.integers(0, 3)),
        st.tuples(st.just("drop"), names, st.just(0)),
        st.tuples(st.just("tick"), st.just(""), st.integers(1, 6)),
        st.tuples(st.just("join"), st.just(""), st.just(0)),
        st.tuples(st.just("lose"), st.just(""), st.integers(0, 3)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_observers_converge_or_know_they_missed_something(
    script: list[tuple[str, str, int]],
) -> None:
    pub = publisher()
    world: dict[str, int] = {}
    now = 0.0
    observers: list[WatchedState] = []
    deaf: set[int] = set()  # observers that miss the next Update

    def rows() -> list[PeerItem]:
        return [row(name, queued) for name, queued in sorted(world.items())]

    def deliver(update: Update) -> None:
        for i, state in enumerate(observers):
            if i in deaf:
                deaf.discard(i)
                continue
            if state.synced and not state.apply(update):
                state.apply_snapshot(pub.snapshot(rows(), STATS, [], now)[0])  # a resync

    for op, name, n in script:
        if op == "set":
            world[name] = n
        elif op == "drop":
            world.pop(name, None)
        elif op == "tick":
            now += n * 0.125
            update = pub.update(rows(), STATS, now)
            if update is not None:
                deliver(update)
        elif op == "join":
            snap, catch_up = pub.snapshot(rows(), STATS, [], now)
            if catch_up is not None:
                deliver(catch_up)  # to the others: the newcomer's Snapshot already has it
            state = WatchedState()
            state.apply_snapshot(snap)
            observers.append(state)
        elif observers:
            deaf.add(n % len(observers))
    # A heartbeat reaches everyone at last (PUB loses some, not all): whoever is still synced
    # after it holds the world itself; whoever missed an Update saw the gap and resynced.
    deaf.clear()
    now += 1.0
    last = pub.update(rows(), STATS, now)
    assert last is not None  # a change, or the heartbeat
    deliver(last)
    truth = {r.name: r for r in rows()}
    for state in observers:
        assert state.synced
        assert state.peers == truth
        assert state.seq == pub.seq


def test_the_router_core_answers_observe_with_a_snapshot() -> None:
    core = RouterCore(epoch=5)
    core.publish_endpoints.append("ipc://r.pub")
    identity = b"watcher/1"
    core.handle(identity, [encode(Hello(PROTOCOL_VERSION, "watcher", 1, 1, False, 1, True))], 0.0)
    core.take_output(0.0)
    core.handle(b"alice/1", [encode(Hello(PROTOCOL_VERSION, "alice", 1, send_only=True))], 0.0)
    core.handle(b"alice/1", [encode(Send(1, [SendItem(1, "bob")])), b"hi"], 0.0)
    core.take_output(0.0)
    core.handle(identity, [encode(Observe())], 0.1)
    (out,) = [parts for ident, parts, _ in core.take_output(0.1) if ident == identity]
    snap = decode(out[0])
    assert isinstance(snap, Snapshot)
    assert snap.router_epoch == 5 and snap.publish == ["ipc://r.pub"]
    assert [(r.name, r.online, r.queued) for r in snap.peers] == [("bob", False, 1)]
    assert snap.stats["accepted"] == 1
    # The Snapshot's own catch-up Update comes first, then none until the next interval.
    updates = core.take_updates(0.1)
    assert [u.seq for u in updates] == [snap.seq] and snap.seq == 1
    assert core.take_updates(0.2) == ()


def test_rows_say_how_long_the_oldest_mail_has_waited() -> None:
    core = RouterCore(epoch=5)
    core.handle(b"alice/1", [encode(Hello(PROTOCOL_VERSION, "alice", 1, send_only=True))], 0.0)
    core.handle(b"alice/1", [encode(Send(1, [SendItem(1, "bob")])), b"first"], 1.0)
    core.handle(b"alice/1", [encode(Send(1, [SendItem(2, "bob", prev=1)])), b"next"], 2.0)
    (bob,) = core.peers(3.5)
    assert (bob.queued, bob.waiting_ms) == (2, 2500)  # the first, accepted at 1.0
    core.handle(b"bob/1", [encode(Hello(PROTOCOL_VERSION, "bob", 1))], 4.0)
    out = [decode(parts[0]) for ident, parts, _ in core.take_output(4.0) if ident == b"bob/1"]
    (sid,) = [frame.session for frame in out if isinstance(frame, Welcome)]
    (bob,) = core.peers(5.0)  # both delivered: in flight, still counted from acceptance
    assert (bob.queued, bob.inflight, bob.waiting_ms) == (0, 2, 4000)
    core.handle(b"bob/1", [encode(Ack(sid, 1))], 5.0)  # the first acked: the second is oldest
    (bob,) = core.peers(6.0)
    assert (bob.inflight, bob.waiting_ms) == (1, 4000)
    core.handle(b"bob/1", [encode(Ack(sid, 2))], 6.0)
    (bob,) = core.peers(7.0)
    assert (bob.inflight, bob.waiting_ms) == (0, 0)


@given(st.lists(st.floats(0, 3600, allow_nan=False), min_size=1, max_size=300))
def test_latency_figures_are_never_under_and_at_most_an_eighth_over(xs: list[float]) -> None:
    window = LatencyWindow()
    for x in xs:
        window.record(x)
    figures = window.summary()
    truth = sorted(int(x * 1_000_000) | 1 for x in xs)  # µs, as recorded
    assert figures["n"] == len(xs)
    for p in (50, 90, 99):
        exact = truth[math.ceil(len(truth) * p / 100) - 1]
        assert exact <= figures[f"p{p}"] <= exact * 9 / 8 + 1
    assert truth[-1] <= figures["max"] <= truth[-1] * 9 / 8 + 1
    window.reset()
    assert window.summary() == {}


def test_updates_carry_accept_to_ack_latency() -> None:
    core = RouterCore(epoch=5)
    core.handle(b"alice/1", [encode(Hello(PROTOCOL_VERSION, "alice", 1, send_only=True))], 0.0)
    core.handle(b"bob/1", [encode(Hello(PROTOCOL_VERSION, "bob", 1))], 0.0)
    core.take_updates(0.0)  # the first Update: nothing acked yet
    core.handle(b"alice/1", [encode(Send(1, [SendItem(1, "bob")])), b"hi"], 1.0)
    out = [decode(parts[0]) for ident, parts, _ in core.take_output(1.0) if ident == b"bob/1"]
    (sid,) = [frame.session for frame in out if isinstance(frame, Welcome)]
    core.handle(b"bob/1", [encode(Ack(sid, 1))], 1.5)
    (update,) = core.take_updates(1.5)
    assert update.latency_us["n"] == 1
    assert 500_000 <= update.latency_us["p50"] <= 562_500
    (quiet,) = core.take_updates(3.0)  # the heartbeat: nothing acked since
    assert quiet.latency_us == {}
    # A big ack is sampled, every 16th message standing for 16: the count stays near.
    items = [SendItem(seq, "bob", prev=seq - 1) for seq in range(2, 102)]
    core.handle(b"alice/1", [encode(Send(2, items)), *[b"x"] * 100], 4.0)
    core.take_output(4.0)
    core.handle(b"bob/1", [encode(Ack(sid, 101))], 4.25)
    (busy,) = core.take_updates(4.25)
    assert abs(busy.latency_us["n"] - 100) < 16
    assert 250_000 <= busy.latency_us["p50"] <= busy.latency_us["max"] <= 281_250


def test_render_shows_names_mail_counters_and_trouble() -> None:
    state = WatchedState()
    bob = PeerItem("bob", False, 0, 0, 4, 0, "", waiting_ms=42_000)
    snap = Snapshot(0x1F, 3, 12_000, [], [bob], {"accepted": 4}, heartbeat_ms=1000)
    state.apply_snapshot(snap)
    state.apply(
        Update(
            0x1F,
            4,
            13_000,
            [PeerItem("tester", True, 2, 10, 0, 0, "dead: no live pane")],
            [],
            {"accepted": 9},
            {"n": 5, "p50": 2304, "p90": 7168, "p99": 14336, "max": 40960},
        )
    )
    console = Console(record=True, width=120, color_system=None)
    console.print(render(state, url="ipc://r", silent=True))
    text = console.export_text()
    assert "router 1f" in text and "router silent" in text and "update 4" in text
    assert "bob" in text and "offline" in text and "4" in text and "42.0s" in text
    assert "tester" in text and "dead: no live pane" in text
    assert "accepted 5/s" in text and "accepted 9" in text
    assert "accept → ack p50 2.3 ms" in text and "max 41.0 ms (5 acked)" in text
    waiting = Console(record=True, width=120, color_system=None)
    waiting.print(render(WatchedState(), url="ipc://r"))
    assert "waiting for the router" in waiting.export_text()


def crowded(peers: int = 1000) -> WatchedState:
    """A router's view with ``peers`` names: a few with mail (one offline), the rest idle."""
    rows = [PeerItem(f"agent-{i:04d}", True, 7, i, 0, 0, "live %3") for i in range(peers)]
    rows[500] = PeerItem("agent-0500", True, 7, 0, 40, 64, "live %9", waiting_ms=1500)
    rows[999] = PeerItem("agent-0999", False, 0, 0, 7, 0, "", waiting_ms=90_000)
    rows.append(PeerItem("a-name-far-too-long-for-any-column-" * 3, True, 7, 0, 1, 0, "x" * 200))
    state = WatchedState()
    stats = {"accepted": 10_000_000, "delivered": 9_999_000, "acked": 9_998_000}
    state.apply_snapshot(Snapshot(0x1F, 3, 12_000, [], rows, stats, heartbeat_ms=1000))
    later = {key: value + 2000 for key, value in stats.items()}
    latency = {"n": 2000, "p50": 2304, "p90": 7168, "p99": 14336, "max": 40960}
    state.apply(Update(0x1F, 4, 13_000, [], [], later, latency))
    return state


def test_a_thousand_peers_fit_80_columns_busiest_first() -> None:
    console = Console(record=True, width=80, color_system=None, force_terminal=False)
    console.print(render(crowded(), url="ipc:///tmp/a/very/long/path/to/the/router", rows=10))
    lines = console.export_text().splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    assert len(lines) <= 24  # one screen, with the 10 rows asked for
    text = "\n".join(lines)
    assert "peers 1,001 · online 1,000 · offline 1 · mail 48 queued, 64 in flight" in text
    assert "accepted 2,000/s  delivered 2,000/s  acked 2,000/s" in text
    named = [line.split()[0] for line in lines if line.startswith(("agent-", "a-name"))]
    assert named[:2] == ["agent-0500", "agent-0999"]  # the most mail; the longest waiting
    assert named[2] == "a-name-far-too-long…"  # cut to fit
    assert len(named) == 10
    assert "… and 991 more (991 online, 0 with mail): the 10 busiest shown" in text


def test_a_frame_of_a_thousand_peers_renders_within_20ms() -> None:
    """The whole frame, from the state to the text a terminal gets, at 80 columns. The
    median of several: one slow render on a shared machine is not the monitor's doing."""
    import time

    state = crowded()
    console = Console(width=80, height=40, color_system="standard", force_terminal=True)
    took = []
    for _ in range(15):  # about 1.5 ms each here
        start = time.perf_counter()
        with console.capture():
            console.print(render(state, url="ipc://r", rows=30))
        took.append(time.perf_counter() - start)
    assert sorted(took)[7] <= 0.020, took
