"""ClientCore on its own: what it sends, and when, for a given clock."""

from __future__ import annotations

from zmqswarm.protocol import (
    Ack,
    ClientCore,
    ClientOptions,
    Deliver,
    DeliverItem,
    Heartbeat,
    Held,
    Hello,
    Hold,
    PeerState,
    Welcome,
    decode,
    encode,
)
from zmqswarm.protocol.client_core import Progressed
from zmqswarm.protocol.frames import PROTOCOL_VERSION
from zmqswarm.protocol.inbox import Inbound


def ready_core(ack_delay: float) -> ClientCore:
    options = ClientOptions(recv_window=16, ack_delay=ack_delay)
    core = ClientCore("bob", epoch=7, options=options)
    core.connect(0.0)
    core.outgoing(0.0)  # the Hello
    core.receive([encode(Welcome(PROTOCOL_VERSION, 1, 1, 0, 1000, 1 << 20, 1))], 0.0)
    assert core.state == "ready"
    core.events()
    return core


def deliver(core: ClientCore, first: int, n: int, now: float) -> list[Inbound]:
    items = [DeliverItem(d, "alice", 3, d, 1) for d in range(first, first + n)]
    core.receive([encode(Deliver(1, items)), *(b"x" for _ in items)], now)
    return core.take_received()


def acks(core: ClientCore, now: float) -> list[int]:
    return [f.upto for parts in core.outgoing(now) if isinstance(f := decode(parts[0]), Ack)]


def test_the_first_ack_goes_at_once_then_acks_are_coalesced() -> None:
    core = ready_core(ack_delay=0.002)
    for msg in deliver(core, 1, 1, 1.0):
        core.ack(msg.key)
    assert acks(core, 1.0) == [1]  # after a quiet spell: no delay
    for msg in deliver(core, 2, 2, 1.0005):
        core.ack(msg.key)
    assert acks(core, 1.0005) == []  # held: one Ack per ack_delay
    assert core.next_deadline() == 1.002  # ...and the driver is told when to come back
    assert core.ack_due() == 1.002  # the same, asked the cheap way
    assert acks(core, 1.002) == [3]
    assert core.next_deadline() > 1.002  # nothing left to ack
    assert core.ack_due() == float("inf")


def test_a_quarter_of_the_credit_window_is_acked_without_waiting() -> None:
    core = ready_core(ack_delay=10.0)
    for msg in deliver(core, 1, 1, 1.0):
        core.ack(msg.key)
    assert acks(core, 1.0) == [1]
    for msg in deliver(core, 2, 3, 1.0):
        core.ack(msg.key)
    assert acks(core, 1.0) == []  # 3 < 16 // 4
    assert core.next_deadline() > 1.0  # held: nothing due now
    for msg in deliver(core, 5, 1, 1.0):
        core.ack(msg.key)
    assert core.next_deadline() <= 1.0  # a driver that arms timers from this comes now
    assert core.ack_due() <= 1.0
    assert acks(core, 1.0) == [5]  # 4 waiting: the router must get its credit back


def test_close_flushes_a_held_ack() -> None:
    core = ready_core(ack_delay=10.0)
    for msg in deliver(core, 1, 2, 1.0):
        core.ack(msg.key)
    core.outgoing(1.0)
    for msg in deliver(core, 3, 1, 1.0):
        core.ack(msg.key)
    assert acks(core, 1.0) == []
    core.close(1.0)
    assert [decode(p[0]) for p in core.outgoing(1.0)][0] == Ack(1, 3)


def test_an_ack_note_travels_with_the_ack_that_covers_it() -> None:
    core = ready_core(ack_delay=0.0)
    first, second = deliver(core, 1, 2, 1.0)
    core.ack(first.key, "submitted in 90 ms")
    core.ack(second.key)
    frames = [decode(parts[0]) for parts in core.outgoing(1.0)]
    assert frames == [Ack(1, 2, [(1, "submitted in 90 ms")])]


def test_a_recipient_that_only_acks_still_pings_a_silent_router() -> None:
    """Acks keep the link busy one way; if nothing comes back for a heartbeat, ping, so the
    router's answer keeps the session alive (it was lost after 3 s before)."""
    core = ready_core(ack_delay=0.0)
    msgs = deliver(core, 1, 40, 0.0)
    now = 0.0
    sent: list[str] = []
    pinged = False
    for msg in msgs:  # one ack every 0.1 s for 4 s, nothing from the router
        now += 0.1
        core.ack(msg.key)
        core.tick(now)
        sent += [type(decode(p[0])).__name__ for p in core.outgoing(now)]
        if "Heartbeat" in sent:
            core.receive([encode(Heartbeat())], now)  # the router answers
            sent.clear()
            pinged = True
    assert pinged
    assert core.state == "ready"


def test_hold_names_the_delivery_and_a_held_notice_becomes_progress() -> None:
    core = ready_core(ack_delay=0.0)
    (msg,) = deliver(core, 1, 1, 1.0)
    core.hold(msg.key, "deferred: copy mode", 1.0)
    assert [decode(p[0]) for p in core.outgoing(1.0)] == [Hold(1, 1, "deferred: copy mode")]
    core.receive([encode(Held(5, "dead: no live pane"))], 1.0)
    assert core.events() == [Progressed(5, "dead: no live pane")]


def test_resends_behind_waiting_fresh_messages_leave_in_seq_order() -> None:
    """A refused chain comes back while later seqs still wait for room in the window: the
    resends are merged in ascending order (they used to be sorted into the queue one by one,
    which was quadratic: minutes of CPU for 20k messages behind a full mailbox)."""
    from zmqswarm.protocol import Code, SendWindow

    window = SendWindow(window=4, resend_after=10.0)
    for _ in range(8):
        window.submit("bob", b"x", 0.0, False, 0)
    assert [m.seq for m in window.take(0.0, 100)] == [1, 2, 3, 4]  # 5-8 wait for room
    window.on_nack(1, Code.MAILBOX_FULL, "full", 200, 0.0)  # 1-4 to come back later
    window.tick(1.0)  # their retry time: requeued behind 5-8
    window.on_receipt(0, [2, 3])  # settled meanwhile: skipped, not resent
    assert [m.seq for m in window.take(1.0, 100)] == [1, 4]  # the window: below base 1 + 4
    window.on_receipt(1, [4])
    assert [m.seq for m in window.take(1.0, 100)] == [5, 6, 7, 8]


def test_the_peer_state_is_said_once_ready_and_again_after_every_welcome() -> None:
    core = ClientCore("bob", epoch=7, options=ClientOptions())
    core.connect(0.0)
    core.set_state("live %3", 0.0)  # before the session: kept, not sent
    assert not [f for p in core.outgoing(0.0) if isinstance(f := decode(p[0]), PeerState)]
    core.receive([encode(Welcome(PROTOCOL_VERSION, 1, 1, 0, 1000, 1 << 20, 1))], 0.0)
    states = [f for p in core.outgoing(0.0) if isinstance(f := decode(p[0]), PeerState)]
    assert states == [PeerState("live %3")]
    core.set_state("dead: no live pane", 0.1)
    states = [f for p in core.outgoing(0.1) if isinstance(f := decode(p[0]), PeerState)]
    assert states == [PeerState("dead: no live pane")]
    core.tick(10.0)  # the router went quiet: the session is lost, a new Hello goes out
    (hello,) = [f for p in core.outgoing(10.0) if isinstance(f := decode(p[0]), Hello)]
    core.receive([encode(Welcome(PROTOCOL_VERSION, 1, 2, 0, 1000, 1 << 20, hello.attempt))], 10.0)
    states = [f for p in core.outgoing(10.0) if isinstance(f := decode(p[0]), PeerState)]
    assert states == [PeerState("dead: no live pane")]  # the new session hears it again
