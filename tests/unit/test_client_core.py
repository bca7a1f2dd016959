"""ClientCore on its own: what it sends, and when, for a given clock."""

from __future__ import annotations

import pytest

from zmqswarm.errors import LocalProtocolError
from zmqswarm.protocol import (
    Ack,
    ClientCore,
    ClientOptions,
    Code,
    Deliver,
    DeliverItem,
    Heartbeat,
    Held,
    Hello,
    Hold,
    Nack,
    PeerState,
    Send,
    Welcome,
    decode,
    encode,
)
from zmqswarm.protocol.client_events import Accepted, Progressed
from zmqswarm.protocol.frames import PROTOCOL_VERSION
from zmqswarm.protocol.inbox import Inbound

LIVENESS_MS = 800  # the router's: leases last half of it


def welcome(session: int, attempt: int, resumed: bool = False, router: int = 1) -> list[bytes]:
    w = Welcome(PROTOCOL_VERSION, router, session, 0, 200, 1 << 20, attempt, 0, resumed, 800)
    return [encode(w)]


def ready_core(ack_delay: float) -> ClientCore:
    options = ClientOptions(recv_window=16, ack_delay=ack_delay)
    core = ClientCore("bob", epoch=7, options=options)
    core.connect(0.0)
    core.outgoing(0.0)  # the Hello
    core.receive(welcome(1, 1), 0.0)
    assert core.state == "ready"
    core.events()
    return core


def confirm(core: ClientCore, now: float) -> None:
    """Answer the ping the core sent, as the router does for a live session."""
    pings = [f for p in core.outgoing(now) if isinstance(f := decode(p[0]), Heartbeat)]
    assert pings, "no ping was sent"
    core.receive([encode(pings[-1])], now)


def take_all(core: ClientCore, now: float) -> list[Inbound]:
    taken = []
    while (msg := core.take_message(now)) is not None:
        taken.append(msg)
    if core.received_waiting:  # the lease ran out: renew it, as the router would
        confirm(core, now)
        taken += take_all(core, now)
    return taken


def deliver(core: ClientCore, first: int, n: int, now: float, session: int = 1) -> list[Inbound]:
    items = [DeliverItem(d, "alice", 3, d, 1) for d in range(first, first + n)]
    core.receive([encode(Deliver(session, items)), *(b"x" for _ in items)], now)
    return take_all(core, now)


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


def test_nothing_is_handed_over_on_a_stale_lease_until_the_router_confirms() -> None:
    """A client stopped longer than its lease (here: no word from the router for 5 s) may
    have lost its session and its name: it asks before it hands anything over."""
    core = ready_core(ack_delay=0.0)
    items = [DeliverItem(1, "alice", 3, 1, 1)]
    core.receive([encode(Deliver(1, items)), b"x"], 0.1)
    assert core.take_message(0.1) is not None  # within the Welcome's lease: at once
    core.receive([encode(Deliver(1, [DeliverItem(2, "alice", 3, 2, 1)])), b"y"], 5.0)
    assert core.take_message(5.0) is None  # the lease ran out
    assert not core.deliverable(5.0)
    (ping,) = [f for p in core.outgoing(5.0) if isinstance(f := decode(p[0]), Heartbeat)]
    assert ping.nonce > 0
    core.receive([encode(Heartbeat(ping.nonce + 1))], 5.001)  # not the answer to it
    assert core.take_message(5.001) is None
    core.receive([encode(ping)], 5.002)  # the echo: the session was alive after 5.0
    assert core.deliverable(5.002)
    msg = core.take_message(5.002)
    assert msg is not None and msg.key == ("alice", 3, 2)
    assert core.take_message(5.0 + LIVENESS_MS / 2000 + 0.01) is None  # and it lasts so long


def test_a_delivery_after_a_silence_asks_the_router_at_once() -> None:
    """The ping that renews a lapsed lease leaves with the turn that took the delivery, not
    when the application next asks for a message: a reader waiting for one (AsyncClient's
    recv(), zs agent's writers) is woken only once the message may be handed over."""
    core = ready_core(ack_delay=0.0)
    core.receive([encode(Deliver(1, [DeliverItem(1, "alice", 3, 1, 1)])), b"x"], 5.0)
    assert not core.deliverable(5.0)  # the lease ran out in the silence
    (ping,) = [f for p in core.outgoing(5.0) if isinstance(f := decode(p[0]), Heartbeat)]
    core.receive([encode(ping)], 5.001)  # the router's echo
    assert core.deliverable(5.001)
    msg = core.take_message(5.001)
    assert msg is not None and msg.key == ("alice", 3, 1)


def test_a_delivery_read_while_reconnecting_sends_no_ping() -> None:
    """A Deliver still in the socket when the link dropped is taken for the Welcome to judge;
    it asks nothing of the router: the Hello on the new link renews the lease."""
    core = ready_core(ack_delay=0.0)
    core.link_down(1.0)
    core.receive([encode(Deliver(1, [DeliverItem(1, "alice", 3, 1, 1)])), b"x"], 1.0)
    assert not any(isinstance(decode(p[0]), Heartbeat) for p in core.outgoing(1.0))
    core.tick(2.0)
    assert not any(isinstance(decode(p[0]), Heartbeat) for p in core.outgoing(2.0))


def test_a_lease_is_renewed_ahead_while_messages_flow() -> None:
    core = ready_core(ack_delay=0.0)
    now, waited = 0.0, 0
    for dseq in range(1, 101):  # one message every 10 ms for a second
        now += 0.01
        core.receive([encode(Deliver(1, [DeliverItem(dseq, "alice", 3, dseq, 1)])), b"x"], now)
        if core.take_message(now) is None:
            waited += 1
        for parts in core.outgoing(now):
            if isinstance(frame := decode(parts[0]), Heartbeat):
                core.receive([encode(frame)], now + 0.0005)  # the router echoes at once
    assert waited == 0


def test_a_session_the_router_ended_hands_over_nothing_it_took() -> None:
    """bob took two messages, then went silent; the router ended his session (someone else
    may hold the name now): the Welcome that follows says so, and bob forgets them, so they
    are new when they come again, to him or to whoever holds the name."""
    core = ready_core(ack_delay=0.0)
    items = [DeliverItem(d, "alice", 3, d, 1) for d in (1, 2)]
    core.receive([encode(Deliver(1, items)), b"1", b"2"], 0.1)
    core.receive([encode(Nack(0, int(Code.NOT_WELCOMED), "say Hello first"))], 5.0)
    assert core.state == "hello"
    (hello,) = [f for p in core.outgoing(5.0) if isinstance(f := decode(p[0]), Hello)]
    assert hello.resume == 1
    core.receive(welcome(2, hello.attempt, resumed=False), 5.0)
    assert core.received_waiting == 0 and core.fenced == 2
    again = [DeliverItem(d, "alice", 3, d, 2) for d in (1, 2)]
    core.receive([encode(Deliver(2, again)), b"1", b"2"], 5.1)
    assert [m.key[2] for m in take_all(core, 5.1)] == [1, 2]  # handed over once, now


def test_a_resumed_session_keeps_what_it_took() -> None:
    core = ready_core(ack_delay=0.0)
    core.receive([encode(Deliver(1, [DeliverItem(1, "alice", 3, 1, 1)])), b"1"], 0.1)
    core.link_down(0.2)
    assert core.state == "hello" and core.take_message(0.2) is None
    core.link_up(0.3)
    (hello,) = [f for p in core.outgoing(0.3) if isinstance(f := decode(p[0]), Hello)]
    core.receive(welcome(2, hello.attempt, resumed=True), 0.3)
    assert [m.key[2] for m in take_all(core, 0.3)] == [1]
    # The router gives it again in the new session: a duplicate, acked, never handed.
    core.receive([encode(Deliver(2, [DeliverItem(1, "alice", 3, 1, 2)])), b"1"], 0.4)
    assert take_all(core, 0.4) == []


def test_a_gap_in_deliveries_starts_a_new_session() -> None:
    """The router never resends within a session: a gap means frames died with a connection
    that was replaced under us, and only a new session brings them again."""
    core = ready_core(ack_delay=0.0)
    deliver(core, 1, 1, 0.1)
    core.outgoing(0.1)
    deliver(core, 3, 1, 0.2)  # 2 is missing
    assert core.state == "hello"
    assert any(isinstance(decode(p[0]), Hello) for p in core.outgoing(0.2))


def test_the_state_machine_refuses_what_a_state_does_not_allow() -> None:
    core = ClientCore("bob", epoch=7)
    core.receive(welcome(1, 1), 0.0)  # before connect(): not an answer to anything
    assert core.state == "new"
    core.connect(0.0)
    with pytest.raises(LocalProtocolError, match="'connect' is not allowed in state 'hello'"):
        core.connect(0.0)
    core.close(0.0)
    with pytest.raises(LocalProtocolError, match="submit after close"):
        core.submit("alice", [b"x"], 0.0)
    with pytest.raises(LocalProtocolError, match="'close' is not allowed in state 'closed'"):
        core.close(0.0)
    assert core.take_message(0.0) is None


def test_hold_names_the_delivery_and_a_held_notice_becomes_progress() -> None:
    core = ready_core(ack_delay=0.0)
    (msg,) = deliver(core, 1, 1, 1.0)
    core.hold(msg.key, "deferred: copy mode", 1.0)
    assert [decode(p[0]) for p in core.outgoing(1.0)] == [Hold(1, 1, "deferred: copy mode")]
    core.receive([encode(Held(5, "dead: no live pane"))], 1.0)
    assert core.events() == [Progressed(5, "dead: no live pane")]


def test_resends_behind_waiting_fresh_messages_leave_in_seq_order() -> None:
    """A refused chain comes back while later seqs still wait for room in the window: they
    all leave in ascending order, settled ones skipped (sorting resends into the queue one by
    one was once quadratic: minutes of CPU for 20k messages behind a full mailbox)."""
    from zmqswarm.protocol import Code, SendWindow

    window = SendWindow(window=4, resend_after=10.0)
    for _ in range(8):
        window.submit("bob", b"x", 0.0, False, 0)
    assert [m.seq for m in window.take(0.0, 100)] == [1, 2, 3, 4]  # 5-8 wait for room
    window.on_nack(1, Code.MAILBOX_FULL, "full", 200, 0.0)  # 2-8 wait behind 1
    window.tick(1.0)
    assert [m.seq for m in window.take(1.0, 100)] == [1]
    window.on_receipt(1, [3])  # 1 accepted (3 too, meanwhile): the chain goes, in order
    assert [m.seq for m in window.take(1.0, 100)] == [2, 4, 5]  # the window: below 2 + 4
    window.on_receipt(2, [4])
    assert [m.seq for m in window.take(1.0, 100)] == [6, 7, 8]


def test_the_peer_state_is_said_once_ready_and_again_after_every_welcome() -> None:
    core = ClientCore("bob", epoch=7, options=ClientOptions())
    core.connect(0.0)
    core.set_state("live %3", 0.0)  # before the Welcome: right behind the Hello
    assert [type(decode(p[0])) for p in core.outgoing(0.0)] == [Hello, PeerState]
    core.receive([encode(Welcome(PROTOCOL_VERSION, 1, 1, 0, 1000, 1 << 20, 1))], 0.0)
    states = [f for p in core.outgoing(0.0) if isinstance(f := decode(p[0]), PeerState)]
    assert states == [PeerState("live %3")]  # and again once welcomed: idempotent
    core.link_down(0.05)
    core.set_state("kept for the next session", 0.05)  # no link: nothing to send it on
    assert not core.outgoing(0.05)
    core.link_up(0.06)
    core.receive(welcome(2, 2), 0.06)
    states = [f for p in core.outgoing(0.06) if isinstance(f := decode(p[0]), PeerState)]
    assert states == [PeerState("kept for the next session")]
    core.set_state("dead: no live pane", 0.1)
    states = [f for p in core.outgoing(0.1) if isinstance(f := decode(p[0]), PeerState)]
    assert states == [PeerState("dead: no live pane")]
    core.link_down(10.0)  # the connection dropped and came back: a new Hello goes out
    core.link_up(10.0)
    (hello,) = [f for p in core.outgoing(10.0) if isinstance(f := decode(p[0]), Hello)]
    core.receive(welcome(3, hello.attempt), 10.0)
    states = [f for p in core.outgoing(10.0) if isinstance(f := decode(p[0]), PeerState)]
    assert states == [PeerState("dead: no live pane")]  # the new session hears it again


def test_takeover_is_for_the_first_session_only() -> None:
    """A reconnect must never take the name: it would take it back from the peer that
    replaced this one while it was stopped (found by the property test)."""
    core = ClientCore("bob", epoch=7, options=ClientOptions(takeover=True))
    core.connect(0.0)
    (first,) = [f for p in core.outgoing(0.0) if isinstance(f := decode(p[0]), Hello)]
    assert first.takeover
    core.receive(welcome(1, first.attempt), 0.0)
    core.link_down(1.0)
    core.link_up(1.0)
    (again,) = [f for p in core.outgoing(1.0) if isinstance(f := decode(p[0]), Hello)]
    assert not again.takeover and again.resume == 1


def test_an_ack_its_sender_waits_for_is_due_at_once_the_others_are_coalesced() -> None:
    core = ready_core(ack_delay=0.002)
    plain = [DeliverItem(d, "alice", 3, d, 1) for d in (1, 2)]
    core.receive([encode(Deliver(1, plain)), b"x", b"x"], 1.0)
    for msg in take_all(core, 1.0):
        core.ack(msg.key)
    assert acks(core, 1.0) == [2]  # the first after a quiet spell: at once
    core.receive([encode(Deliver(1, [DeliverItem(3, "alice", 3, 3, 1)])), b"x"], 1.0001)
    (msg,) = take_all(core, 1.0001)
    core.ack(msg.key)
    assert core.ack_due() == 1.002 and acks(core, 1.0001) == []  # coalesced
    waited = DeliverItem(4, "alice", 3, 4, 1, notify=True)  # `zs send --wait delivered`
    core.receive([encode(Deliver(1, [waited])), b"x"], 1.0002)
    (msg,) = take_all(core, 1.0002)
    core.ack(msg.key)
    assert core.ack_due() == 0.0 and acks(core, 1.0002) == [4]  # its sender waits: now


def test_mail_read_after_the_connection_dropped_arrived_before_and_is_kept() -> None:
    """The loop reads the monitor (dropped) before the socket's last Deliver frames: they
    belong to the session still held. After a router restart nobody else has them: they are
    handed over; the same router, not resuming the session, makes them be forgotten."""
    for router, resumed, kept in ((2, False, [1, 2]), (1, False, []), (1, True, [1, 2])):
        core = ready_core(ack_delay=0.0)
        core.link_down(0.1)
        items = [DeliverItem(d, "alice", 3, d, 1) for d in (1, 2)]
        core.receive([encode(Deliver(1, items)), b"1", b"2"], 0.1)
        assert core.received_waiting == 2 and core.take_message(0.1) is None
        core.link_up(0.2)
        (hello,) = [f for p in core.outgoing(0.2) if isinstance(f := decode(p[0]), Hello)]
        core.receive(welcome(2, hello.attempt, resumed=resumed, router=router), 0.2)
        assert [m.key[2] for m in take_all(core, 0.2)] == kept, (router, resumed)


def test_a_client_whose_link_is_down_says_hello_only_once_it_is_back() -> None:
    """A Hello said while the link is down waits in libzmq's queue for the next connection
    and arrives stale there, opening a session that the next one ends (found by the one-way
    drop fault test: five such Hellos for a 15 s drop)."""
    core = ready_core(ack_delay=0.0)
    core.link_down(1.0)
    stale = []
    for i in range(1500):  # the link down for 15 s, the driver turning every 10 ms
        now = 1.0 + i / 100
        core.tick(now)
        stale += [f for p in core.outgoing(now) if isinstance(f := decode(p[0]), Hello)]
    assert stale == []  # each would wait in libzmq's queue for the next connection
    core.link_up(16.0)
    assert [type(decode(p[0])) for p in core.outgoing(16.0)] == [Hello]


def test_a_refused_message_is_retried_alone_and_its_successors_wait_behind_it() -> None:
    """MAILBOX_FULL on seq 1 of a chain to bob: only seq 1 is retried (soon, cheaply); 2-4
    wait, unsent, until it is accepted, then go in order. Mail to others is not held up."""
    from zmqswarm.protocol import Code, SendWindow

    window = SendWindow(window=100, resend_after=10.0)
    for to in ("bob", "bob", "bob", "carol", "bob"):
        window.submit(to, b"x", 0.0, False, 0)
    assert [m.seq for m in window.take(0.0, 100)] == [1, 2, 3, 4, 5]
    window.on_nack(1, Code.MAILBOX_FULL, "bob: mailbox_full", 200, 0.0)
    window.on_nack(3, Code.OUT_OF_ORDER, "waiting for seq 2", 0, 0.0)  # parked already
    window.on_receipt(0, [4])  # carol's: accepted
    window.tick(0.1)
    assert window.take(0.1, 100) == []  # seq 1's retry is not due yet
    window.tick(0.3)
    assert [m.seq for m in window.take(0.3, 100)] == [1]  # alone
    window.on_nack(1, Code.MAILBOX_FULL, "bob: mailbox_full", 200, 0.3)  # still full
    window.tick(0.6)
    assert [m.seq for m in window.take(0.6, 100)] == [1]
    window.on_receipt(1, [])  # accepted: the chain behind it goes, in order
    assert [m.seq for m in window.take(0.6, 100)] == [2, 3, 5]


def test_a_parked_chain_goes_on_when_its_head_gives_up_or_the_session_starts_again() -> None:
    from zmqswarm.protocol import Code, SendWindow

    window = SendWindow(window=100, resend_after=10.0)
    for _ in range(3):
        window.submit("bob", b"x", 0.0, False, 0)
    window.take(0.0, 100)
    window.on_nack(1, Code.MAILBOX_FULL, "full", 200, 0.0)
    (failed,) = window.on_nack(1, Code.TOO_LARGE, "too large", 0, 0.1)  # now refused for good
    assert failed.seq == 1
    assert [m.seq for m in window.take(0.1, 100)] == [2, 3]
    window.on_nack(2, Code.MAILBOX_FULL, "full", 200, 0.2)
    window.take(0.2, 100)
    window.requeue_sent_before(0.3)  # a new session: everything unreceipted goes again
    assert [m.seq for m in window.take(0.3, 100)] == [2, 3]


def test_an_earlier_refusal_heads_the_chain_and_the_old_head_waits_behind_it() -> None:
    """3 was refused first (in flight before), then 1 comes back refused after a release:
    1 heads the chain now, 3 waits behind it instead of its own retry timer."""
    from zmqswarm.protocol import Code, SendWindow

    window = SendWindow(window=100, resend_after=10.0)
    for _ in range(4):
        window.submit("bob", b"x", 0.0, False, 0)
    window.take(0.0, 100)
    window.on_nack(3, Code.MAILBOX_FULL, "full", 200, 0.0)
    window.on_nack(1, Code.MAILBOX_FULL, "full", 200, 0.0)
    window.tick(0.3)
    assert [m.seq for m in window.take(0.3, 100)] == [1]  # 3 waits, whatever its timer said
    window.on_receipt(1, [])
    assert [m.seq for m in window.take(0.3, 100)] == [2, 3, 4]


def test_a_message_submitted_while_its_chain_waits_waits_too() -> None:
    from zmqswarm.protocol import Code, SendWindow

    window = SendWindow(window=100, resend_after=10.0)
    window.submit("bob", b"x", 0.0, False, 0)
    window.take(0.0, 100)
    window.on_nack(1, Code.MAILBOX_FULL, "full", 200, 0.0)
    window.submit("bob", b"x", 0.1, False, 0)  # would be refused OUT_OF_ORDER: not sent
    window.submit("carol", b"x", 0.1, False, 0)
    assert [m.seq for m in window.take(0.1, 100)] == [3]
    window.tick(0.3)
    assert [m.seq for m in window.take(0.3, 100)] == [1]
    window.on_receipt(1, [3])
    assert [m.seq for m in window.take(0.3, 100)] == [2]


def test_a_resumed_stream_says_hello_above_its_old_attempts_and_resends_in_order() -> None:
    """What an earlier process of the stream left unsettled (seqs 5, 7, 8) goes again first,
    chained per recipient anew; new messages go on from the spool's next seq; the Hello's
    attempt is above the earlier process's; the Welcome's ``acked`` settles what it covers."""
    core = ClientCore("alice", epoch=7, hellos=1 << 24)
    unsent = [(5, "bob", b"a", False, 0), (7, "carol", b"b", False, 0), (8, "bob", b"c", False, 0)]
    core.resume(10, unsent, 0.0)
    assert core.submit("bob", [b"d"], 0.0) == [10]
    core.connect(0.0)
    frames = [decode(parts[0]) for parts in core.outgoing(0.0)]
    hello, send = frames
    assert isinstance(hello, Hello) and hello.attempt == (1 << 24) + 1
    assert isinstance(send, Send) and send.base == 5
    assert [(i.seq, i.to, i.prev) for i in send.items] == [
        (5, "bob", 0),
        (7, "carol", 0),
        (8, "bob", 5),
        (10, "bob", 8),
    ]
    w = Welcome(PROTOCOL_VERSION, 1, 1, 7, 200, 1 << 20, hello.attempt, 0, False, 800)
    core.receive([encode(w)], 0.0)
    assert core.events()[0] == Accepted([5, 7])
    assert sorted(core.window.pending) == [8, 10]


def test_a_recipient_seeded_with_its_state_hands_over_only_what_was_never_acked() -> None:
    """An earlier process acked alice's 1..5 and 8 (7 was still with its application): when
    they come again, only 6, 7 and 9 are handed over; the rest are acked at once."""
    core = ready_core(ack_delay=0.0)
    core.inbox.seed({("alice", 3): 5}, {("alice", 3): {8}})
    handed = deliver(core, 1, 9, 0.0)
    assert [m.key[2] for m in handed] == [6, 7, 9]
    for m in handed:
        core.ack(m.key)
    assert acks(core, 0.0) == [9]


def test_a_deliver_that_overtook_its_welcome_starts_the_session_anew() -> None:
    """Dropped while we said Hello (its session was not ours yet), its messages would never
    come again: the Welcome then ends the session at once and says Hello, resuming it, so
    that the router resends what it had out. (The reliability property test found this.)"""
    core = ClientCore("bob", epoch=7, options=ClientOptions(recv_window=16))
    core.connect(0.0)
    core.outgoing(0.0)  # the Hello
    assert deliver(core, 1, 1, 0.0, session=1) == []  # before its Welcome: dropped
    core.receive(welcome(1, 1), 0.0)
    assert core.state == "hello"
    hello = [f for p in core.outgoing(0.0) if isinstance(f := decode(p[0]), Hello)]
    assert len(hello) == 1 and hello[0].resume == 1
    core.receive(welcome(2, 2, resumed=True), 0.1)
    assert core.state == "ready" and [m.key[2] for m in deliver(core, 1, 1, 0.1, 2)] == [1]


@pytest.mark.parametrize("router_packs", [True, False])
def test_sends_are_packed_only_for_a_router_that_said_so_and_deliveries_taken_either_way(
    router_packs: bool,
) -> None:
    core = ClientCore("alice", epoch=3)
    core.connect(0.0)
    core.submit("bob", [b"early"], 0.0)
    hello, early = core.outgoing(0.0)
    said = decode(hello[0])
    assert isinstance(said, Hello) and said.packed is True
    assert early[1:] == [b"early"]  # before a Welcome: a part a payload, as any router takes
    w = Welcome(PROTOCOL_VERSION, 1, 1, 1, 200, 1 << 20, 1, 0, False, 800, router_packs)
    core.receive([encode(w)], 0.0)
    core.submit("bob", [b"a", b"bc"], 0.1)
    (frame,) = core.outgoing(0.1)
    send = decode(frame[0])
    assert isinstance(send, Send) and len(send.items) == 2
    if router_packs:
        assert send.sizes == [1, 2] and frame[1:] == [b"abc"]
    else:
        assert send.sizes == [] and frame[1:] == [b"a", b"bc"]
    items = [DeliverItem(1, "bob", 9, 1, 1), DeliverItem(2, "bob", 9, 2, 1)]
    core.receive([encode(Deliver(1, items, [2, 1])), b"hi!"], 0.2)
    core.receive([encode(Deliver(1, [DeliverItem(3, "bob", 9, 3, 1)])), b"yo"], 0.2)
    core.receive([encode(Deliver(1, [DeliverItem(4, "bob", 9, 4, 1)], [5])), b"short"[:4]], 0.2)
    assert [m.payload for m in take_all(core, 0.2)] == [b"hi", b"!", b"yo"]
    assert core.bad_frames == 1  # sizes that do not cut its part


def test_a_packed_send_part_holds_at_most_what_the_router_takes() -> None:
    """A packed part stays within the router's max_payload (its ZMQ_MAXMSGSIZE is four of
    those), a payload alone excepted: a batch of large payloads goes in several Sends."""
    core = ClientCore("alice", epoch=3)
    core.connect(0.0)
    core.outgoing(0.0)
    core.receive([encode(Welcome(PROTOCOL_VERSION, 1, 1, 0, 200, 10, 1, 0, False, 800, True))], 0)
    core.submit("bob", [b"x" * 6, b"y" * 6, b"z" * 20, b"w"], 0.1)
    frames = core.outgoing(0.1)
    assert [f[1] for f in frames] == [b"x" * 6, b"y" * 6, b"z" * 20, b"w"]
    core.submit("bob", [b"a" * 3, b"b" * 3, b"c" * 3, b"d" * 3], 0.2)
    assert [f[1:] for f in core.outgoing(0.2)] == [[b"aaabbbccc"], [b"ddd"]]
