"""Engine, the part both drivers share, fed frames by hand (no sockets)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from zmqswarm.client.base import Engine
from zmqswarm.protocol import ClientOptions, Deliver, DeliverItem, Welcome, encode
from zmqswarm.protocol.frames import PROTOCOL_VERSION


def ready_engine(recv_window: int) -> Engine:
    engine = Engine("bob", 7, ClientOptions(recv_window=recv_window))
    engine.core.connect(0.0)
    engine.core.outgoing(0.0)  # the Hello
    engine.feed_turn([[encode(Welcome(PROTOCOL_VERSION, 1, 1, 0, 1000, 1 << 20, 1))]], 0.0)
    engine.step(0.0, lambda parts: None)
    assert engine.connected
    return engine


def delivery(first: int, n: int) -> list[bytes]:
    items = [DeliverItem(d, "alice", 3, d, 1) for d in range(first, first + n)]
    return [encode(Deliver(1, items)), *(b"x" for _ in items)]


def test_a_turn_stops_feeding_once_a_turns_worth_waits() -> None:
    engine = ready_engine(recv_window=64)  # a turn's worth: 64 // 8 = 8 messages
    frames = iter([delivery(1, 5), delivery(6, 5), delivery(11, 5)])
    assert engine.feed_turn(frames, 1.0) == 2  # 10 waiting >= 8: stop
    assert engine.turn_full
    assert len(list(frames)) == 1  # the third frame is left for the next turn
    engine.step(1.0, lambda parts: None)
    assert [m.key[2] for m in engine.inbox] == list(range(1, 11))
    assert not engine.turn_full


@given(st.lists(st.integers(1, 20), min_size=1, max_size=30))
def test_turns_hand_everything_over_in_order_a_turns_worth_at_a_time(sizes: list[int]) -> None:
    engine = ready_engine(recv_window=64)
    frames, first = [], 1
    for n in sizes:
        frames.append(delivery(first, n))
        first += n
    pending = iter(frames)
    taken = 0
    while taken < len(frames):
        before = len(engine.inbox)
        fed = engine.feed_turn(pending, 1.0)
        assert fed >= 1
        engine.step(1.0, lambda parts: None)
        got = len(engine.inbox) - before
        last = sizes[taken + fed - 1]
        assert got < engine.turn_messages + last  # it stopped at the first frame over
        taken += fed
    assert [m.key[2] for m in engine.inbox] == list(range(1, first))
