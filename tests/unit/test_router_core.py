"""RouterCore decisions, frame by frame, with no socket."""

from __future__ import annotations

import msgspec
import pytest

from zmqswarm.errors import LocalProtocolError
from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Code,
    DeadList,
    Deliver,
    Delivered,
    DeliverItem,
    Heartbeat,
    Held,
    Hello,
    Hold,
    ListDead,
    Nack,
    PeerState,
    Receipt,
    RouterCore,
    RouterOptions,
    Send,
    SendItem,
    Welcome,
    decode,
    encode,
)
from zmqswarm.protocol.codec import MAX_HEADER
from zmqswarm.protocol.journaling import Restored, Spill
from zmqswarm.protocol.router_state import ENTRY_COST
from zmqswarm.protocol.sessions import ENDINGS

from .sim import Sim


def hello(core: RouterCore, name: str, epoch: int = 1, now: float = 0.0, **kw: object) -> bytes:
    identity = f"{name}/{epoch}".encode()
    core.handle(identity, [encode(Hello(PROTOCOL_VERSION, name, epoch, **kw))], now)  # type: ignore[arg-type]
    return identity


def replies(core: RouterCore, now: float = 0.0) -> list[tuple[bytes, object]]:
    return [(ident, decode(parts[0])) for ident, parts, _ in core.take_output(now)]


def send(core: RouterCore, ident: bytes, items: list[SendItem], base: int = 1) -> None:
    parts = [encode(Send(base, items)), *(b"x" for _ in items)]
    core.handle(ident, parts, 0.0)


def test_store_and_forward_to_a_never_seen_recipient() -> None:
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    replies(core)
    send(core, alice, [SendItem(1, "bob"), SendItem(2, "bob", prev=1)])
    assert (alice, Receipt(2, [])) in replies(core)
    bob = hello(core, "bob")
    out = replies(core)
    delivers = [f for i, f in out if i == bob and isinstance(f, Deliver)]
    assert delivers == [
        Deliver(2, [DeliverItem(1, "alice", 1, 1, 1), DeliverItem(2, "alice", 1, 2, 1)])
    ]


def test_a_live_name_is_refused_unless_taken_over() -> None:
    core = RouterCore(epoch=7)
    first = hello(core, "bob", epoch=1)
    second = hello(core, "bob", epoch=2)
    out = replies(core)
    assert any(i == second and isinstance(f, Nack) and f.code == Code.NAME_TAKEN for i, f in out)
    hello(core, "bob", epoch=2, takeover=True)
    out = replies(core)
    assert any(i == first and isinstance(f, Nack) and f.code == Code.TAKEN_OVER for i, f in out)
    assert any(i == second and isinstance(f, Welcome) for i, f in out)


def test_a_dead_holder_is_replaced_without_takeover() -> None:
    """A holder whose connection is gone (the driver's probe fails) gives way at once, and
    its unacked mail goes to the newcomer; silence alone never costs a live peer its name."""
    gone: set[bytes] = set()
    core = RouterCore(epoch=7, reachable=lambda identity: identity not in gone)
    alice = hello(core, "alice")
    first = hello(core, "bob", epoch=1, now=0.0)
    send(core, alice, [SendItem(1, "bob")])
    assert any(i == first and isinstance(f, Deliver) for i, f in replies(core))
    second = hello(core, "bob", epoch=2, now=600.0)  # ten minutes of silence: still alive
    refused = [f.code for i, f in replies(core) if i == second and isinstance(f, Nack)]
    assert refused == [Code.NAME_TAKEN]
    gone.add(first)
    hello(core, "bob", epoch=2, now=601.0, attempt=1)
    out = replies(core, 601.0)
    assert any(i == second and isinstance(f, Welcome) for i, f in out)
    (again,) = [f for i, f in out if i == second and isinstance(f, Deliver)]
    assert again.items[0].attempt == 2 and core.stats["redelivered"] == 1


def test_a_gone_peer_ends_its_session_once_and_a_failed_delivery_is_not_counted() -> None:
    core = RouterCore(epoch=7)
    alice, bob = hello(core, "alice"), hello(core, "bob")
    replies(core)
    send(core, alice, [SendItem(1, "bob"), SendItem(2, "bob", prev=1)])
    out = core.take_output(0.0)
    (first,) = [d for i, parts, d in out if i == bob and d]
    assert core.stats["delivered"] == 2
    core.undeliver(bob, first)  # the driver's send failed: EHOSTUNREACH
    core.peer_gone(bob, 0.0)
    assert core.stats["delivered"] == 0 and core.stats["disconnected"] == 1
    assert [p.online for p in core.peers(0.0) if p.name == "bob"] == [False]
    assert [p.queued for p in core.peers(0.0) if p.name == "bob"] == [2]
    send(core, alice, [SendItem(3, "bob", prev=2)], base=3)
    assert not [f for i, f in replies(core) if isinstance(f, Deliver)]  # no session: no spin
    core.peer_gone(bob, 0.0)  # a second report changes nothing
    assert core.stats["disconnected"] == 1


def test_a_ping_is_echoed_for_a_live_session_and_refused_for_a_gone_one() -> None:
    core = RouterCore(epoch=7)
    bob = hello(core, "bob")
    replies(core)
    core.handle(bob, [encode(Heartbeat(5))], 1.0)
    assert replies(core, 1.0) == [(bob, Heartbeat(5))]
    core.handle(bob, [encode(Heartbeat())], 1.0)  # nonce 0: a probe's echo, never answered
    assert replies(core, 1.0) == []
    core.peer_gone(bob, 0.0)
    core.handle(bob, [encode(Heartbeat(6))], 2.0)
    assert [f.code for _, f in replies(core, 2.0) if isinstance(f, Nack)] == [Code.NOT_WELCOMED]


def test_welcome_says_whether_the_session_it_replaces_was_alive() -> None:
    core = RouterCore(epoch=7)
    bob = hello(core, "bob", attempt=1)
    (w1,) = [f for _, f in replies(core) if isinstance(f, Welcome)]
    hello(core, "bob", attempt=2, resume=w1.session)  # a reconnect, the session still alive
    (w2,) = [f for _, f in replies(core) if isinstance(f, Welcome)]
    assert w2.resumed and w2.liveness_ms == 800
    core.peer_gone(bob, 0.0)  # then it went silent for too long
    hello(core, "bob", attempt=3, resume=w2.session)
    (w3,) = [f for _, f in replies(core) if isinstance(f, Welcome)]
    assert not w3.resumed


def test_mail_taken_over_from_a_live_holder_waits_out_the_holders_lease() -> None:
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    old = hello(core, "bob", epoch=1)
    send(core, alice, [SendItem(1, "bob")])
    replies(core)
    new = hello(core, "bob", epoch=2, takeover=True, now=1.0)
    out = replies(core, 1.0)
    assert (old, Nack(0, Code.TAKEN_OVER, "another peer took this name over")) in out
    assert not [f for i, f in out if i == new and isinstance(f, Deliver)]
    core.tick(1.5)
    assert not [f for i, f in replies(core, 1.5) if i == new and isinstance(f, Deliver)]
    core.tick(1.9)  # 0.8 s on: no lease the old holder had can last longer
    assert [f for i, f in replies(core, 1.9) if i == new and isinstance(f, Deliver)]


def test_bad_input_is_refused_counted_and_the_router_keeps_serving() -> None:
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    bob = hello(core, "bob")
    replies(core)
    garbage = [
        [b"\xc1garbage"],  # not MessagePack
        [msgspec.msgpack.encode([99, 1])],  # unknown kind
        [encode(Send(1, [SendItem(1, "bob")]))],  # payload part missing
        [encode(Ack(1, 1)), b"extra part"],
        [encode(Deliver(1, [DeliverItem(1, "carol", 1, 1)])), b"forged"],  # claims a sender
    ]
    for parts in garbage:
        core.handle(alice, parts, 0.0)
    out = replies(core)
    codes = [f.code for i, f in out if i == alice and isinstance(f, Nack)]
    assert codes == [
        Code.BAD_FRAME,
        Code.UNKNOWN_KIND,
        Code.BAD_FRAME,
        Code.BAD_FRAME,
        Code.BAD_FRAME,
    ]
    assert core.stats["bad_frames"] == 5
    send(core, alice, [SendItem(1, "bob")])
    out = replies(core)
    assert (alice, Receipt(1, [])) in out
    assert any(i == bob and isinstance(f, Deliver) for i, f in out)


def test_a_hello_whose_epoch_is_outside_53_bits_is_refused() -> None:
    """Epochs are 1..2^53-1, exact in JavaScript's numbers: anything else opens no session."""
    core = RouterCore(epoch=7)
    for epoch in (0, 1 << 53, 1 << 63):
        ident = hello(core, "bob", epoch, attempt=1)
        [(who, nack)] = replies(core)
        assert who == ident and isinstance(nack, Nack)
        assert (nack.seq, nack.code) == (0, Code.BAD_FRAME)
        assert f"Hello.epoch {epoch} is outside 1..2^53-1" in nack.reason
    assert core.stats["bad_frames"] == 3 and not core.registry.sessions
    for name, epoch in (("bob", 1), ("carol", (1 << 53) - 1)):
        hello(core, name, epoch, attempt=1)
        assert [type(f) for _, f in replies(core)] == [Welcome]


def test_wrong_version_and_invalid_names() -> None:
    core = RouterCore(epoch=7)
    core.handle(b"x", [encode(Hello(PROTOCOL_VERSION + 1, "bob", 1))], 0.0)
    core.handle(b"y", [encode(Hello(PROTOCOL_VERSION, "$dead", 1))], 0.0)
    alice = hello(core, "alice")
    send(core, alice, [SendItem(1, "no spaces allowed")])
    out = replies(core)
    assert (
        b"x",
        Nack(
            0,
            Code.BAD_VERSION,
            f"protocol version {PROTOCOL_VERSION + 1} not supported (want {PROTOCOL_VERSION})",
        ),
    ) in out
    assert any(i == b"y" and isinstance(f, Nack) and f.code == Code.INVALID_NAME for i, f in out)
    assert any(
        i == alice and isinstance(f, Nack) and f.seq == 1 and f.code == Code.INVALID_NAME
        for i, f in out
    )


def test_frames_before_hello_get_not_welcomed_once_a_second() -> None:
    core = RouterCore(epoch=7)
    for _ in range(5):
        core.handle(b"ghost", [encode(Ack(1, 1))], 0.5)
    out = replies(core)
    assert out == [(b"ghost", Nack(0, Code.NOT_WELCOMED, "say Hello first"))]


def test_a_full_mailbox_pushes_back_then_accepts() -> None:
    core = RouterCore(epoch=7, options=RouterOptions(mailbox_max_messages=2))
    alice = hello(core, "alice")
    replies(core)
    send(core, alice, [SendItem(1, "bob"), SendItem(2, "bob", 1), SendItem(3, "bob", 2)])
    out = replies(core)
    assert (alice, Receipt(2, [])) in out
    nacks = [f for i, f in out if isinstance(f, Nack)]
    assert [(n.seq, n.code) for n in nacks] == [(3, Code.MAILBOX_FULL)]
    assert nacks[0].retry_ms > 0
    bob = hello(core, "bob")
    replies(core)
    core.handle(bob, [encode(Ack(2, 2))], 0.1)  # session 2: the second Hello
    replies(core)
    send(core, alice, [SendItem(3, "bob", 2)], base=3)
    assert (alice, Receipt(3, [])) in replies(core, 1.0)  # past the receipt delay


def test_expired_and_undeliverable_messages_become_dead_letters_with_a_notice() -> None:
    core = RouterCore(
        epoch=7, options=RouterOptions(max_attempts=2), reachable=lambda identity: False
    )
    alice = hello(core, "alice")
    send(
        core,
        alice,
        [SendItem(1, "bob", notify=True, ttl_ms=500), SendItem(2, "carol", notify=True)],
    )
    replies(core)
    core.tick(1.0)  # the ttl passes while bob is away: dead letter, notice to alice
    alice = hello(core, "alice", now=1.0, attempt=1)
    out = replies(core, 1.0)
    assert any(isinstance(f, Delivered) and f.seq == 1 and f.status == "expired" for _, f in out)
    assert list(core.dead)[0].code is Code.EXPIRED and list(core.dead)[0].to == "bob"
    for attempt in range(3):  # carol takes the message and dies without acking, three times
        hello(core, "carol", epoch=10 + attempt, now=1.0)
        replies(core, 1.0)
    assert core.stats["dead"] == 2
    assert list(core.dead)[1].code is Code.MAX_ATTEMPTS


def test_simulated_swarm_delivers_in_order() -> None:
    sim = Sim(["a", "b", "c"])
    for i in range(50):
        sim.send("abc"[i % 3], "abc"[(i + 1) % 3])
    sim.settle()
    assert dict(sim.got) == dict(sim.sent)


def test_inflight_bytes_bound_deliveries_besides_the_count_window() -> None:
    core = RouterCore(epoch=7, options=RouterOptions(max_inflight_bytes=2500))
    alice = hello(core, "alice")
    items = [SendItem(i, "bob", i - 1) for i in range(1, 6)]
    core.handle(alice, [encode(Send(1, items)), *(b"x" * 1000 for _ in items)], 0.0)
    bob = hello(core, "bob", window=100)
    first = [f for i, f in replies(core) if i == bob and isinstance(f, Deliver)]
    assert [d.dseq for f in first for d in f.items] == [1, 2, 3]  # 3000 B >= 2500: stop
    core.handle(bob, [encode(Ack(2, 3))], 0.0)
    more = [f for i, f in replies(core) if i == bob and isinstance(f, Deliver)]
    assert [d.dseq for f in more for d in f.items] == [4, 5]


def test_an_ack_note_reaches_the_sender_in_its_delivered_notice() -> None:
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    bob = hello(core, "bob")
    replies(core)
    send(core, alice, [SendItem(1, "bob", notify=True), SendItem(2, "bob", prev=1, notify=True)])
    deliver = next(f for i, f in replies(core) if i == bob and isinstance(f, Deliver))
    core.handle(bob, [encode(Ack(deliver.session, 2, [(1, "submitted in 180 ms")]))], 0.0)
    notices = [f for i, f in replies(core) if i == alice and isinstance(f, Delivered)]
    assert notices == [
        Delivered(1, "delivered", 0, "submitted in 180 ms"),
        Delivered(2, "delivered", 0, ""),
    ]


def test_a_hold_reaches_a_notify_sender_and_a_live_session_never_gets_mail_again() -> None:
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    bob = hello(core, "bob")
    replies(core)
    send(core, alice, [SendItem(1, "bob", notify=True)])
    deliver = next(f for i, f in replies(core) if i == bob and isinstance(f, Deliver))
    core.handle(bob, [encode(Hold(deliver.session, 1, "dead: no live pane"))], 2.5)
    assert (alice, Held(1, "dead: no live pane")) in replies(core, 2.5)
    assert core.stats["held"] == 1
    for now in (10.0, 100.0, 1000.0):  # unacked and silent for minutes: bob is busy
        core.tick(now)
        assert not [f for i, f in replies(core, now) if isinstance(f, Deliver)]


def test_a_send_only_session_shares_a_live_name_and_never_receives() -> None:
    core = RouterCore(epoch=7)
    bob = hello(core, "bob", epoch=1)  # the live agent
    cli = hello(core, "bob", epoch=2, send_only=True)  # `zs send` from inside its pane
    alice = hello(core, "alice")
    out = replies(core)
    assert (cli, Welcome(1, 7, 2, 0, 200, 1 << 20, 0, 0, False, 800, True)) in out
    assert not [f for i, f in out if isinstance(f, Nack)]  # no NAME_TAKEN, no TAKEN_OVER
    send(core, cli, [SendItem(1, "alice", notify=True)])
    deliver = next(f for i, f in replies(core) if i == alice and isinstance(f, Deliver))
    assert deliver.items[0].sender == "bob"  # the reply is from bob
    core.handle(alice, [encode(Ack(deliver.session, 1))], 0.0)
    assert (cli, Delivered(1, "delivered", 0, "")) in replies(core)  # notices find it
    send(core, alice, [SendItem(1, "bob")])
    to_bob = [i for i, f in replies(core) if isinstance(f, Deliver)]
    assert to_bob == [bob]  # deliveries go to the receiving session only
    core.handle(cli, [encode(Ack(2, 1))], 0.0)  # a send-only Ack must not ack bob's mail
    assert core.stats["acked"] == 1


def test_receipts_are_coalesced_per_sender() -> None:
    core = RouterCore(epoch=7, options=RouterOptions(receipt_delay=0.002, receipt_batch=4))
    alice = hello(core, "alice")
    replies(core)

    def receipts(now: float) -> list[object]:
        return [f for i, f in replies(core, now) if isinstance(f, Receipt)]

    core.tick(1.0)
    send(core, alice, [SendItem(1, "bob")])
    assert receipts(1.0) == [Receipt(1, [])]  # the first after a quiet spell: at once
    send(core, alice, [SendItem(2, "bob", 1)])
    assert receipts(1.001) == []  # within receipt_delay: held...
    assert core.next_deadline() == 1.002  # ...and the driver knows when to come back
    send(core, alice, [SendItem(3, "bob", 2)])
    assert receipts(1.002) == [Receipt(3, [])]  # one receipt covers both
    items = [SendItem(s, "bob", s - 1) for s in range(4, 8)]
    send(core, alice, items, base=4)
    assert receipts(1.0021) == [Receipt(7, [])]  # receipt_batch waiting: no delay
    send(core, alice, [SendItem(8, "bob", 7)], base=8)
    assert receipts(1.0022) == []
    core.begin_drain()  # shutting down: nothing is held back any more
    assert receipts(1.0023) == [Receipt(8, [])]


def test_dead_letters_are_listed_in_pages_and_dropped_on_request() -> None:
    core = RouterCore(epoch=7, options=RouterOptions(dead_max=3))
    alice = hello(core, "alice")
    items = [SendItem(s, f"r{s}", ttl_ms=100) for s in range(1, 6)]
    send(core, alice, items)
    core.tick(1.0)  # every ttl passed: five dead letters, room for three
    replies(core, 1.0)
    assert (core.stats["dead"], core.stats["dead_dropped"]) == (5, 2)

    def listed(**kw: int) -> tuple[DeadList, list[bytes]]:
        core.handle(alice, [encode(ListDead(**kw))], 2.0)
        ((_, parts, _),) = [
            o for o in core.take_output(2.0) if isinstance(decode(o[1][0]), DeadList)
        ]
        answer = decode(parts[0])
        assert isinstance(answer, DeadList)
        return answer, parts[1:]

    page, payloads = listed(after=0, limit=2)
    assert [(i.id, i.to, i.seq, i.code) for i in page.items] == [
        (3, "r3", 3, Code.EXPIRED),
        (4, "r4", 4, Code.EXPIRED),
    ]
    assert (page.total, page.dropped, payloads) == (3, 2, [b"x", b"x"])
    assert page.items[0].age_ms == 1000
    rest, _ = listed(after=4, drop_upto=3)
    assert ([i.id for i in rest.items], rest.total) == ([5], 2)


def test_a_recipient_may_drop_an_expired_message_and_it_becomes_a_dead_letter() -> None:
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    bob = hello(core, "bob")
    replies(core)
    send(core, alice, [SendItem(1, "bob", notify=True, ttl_ms=1500)])
    deliver = next(f for i, f in replies(core) if i == bob and isinstance(f, Deliver))
    assert deliver.items[0].ttl_left_ms == 1500  # the recipient knows how long it has
    note = "expired: its ttl passed after 1500 ms waiting for the pane"
    core.handle(bob, [encode(Ack(deliver.session, 1, [(1, note)]))], 1.6)
    assert (alice, Delivered(1, "expired", int(Code.EXPIRED), note)) in replies(core, 1.6)
    assert [(d.to, d.code) for d in core.dead] == [("bob", Code.EXPIRED)]
    assert core.delivery.nbytes == 0  # released once, not twice


def test_a_peer_s_state_is_listed_until_its_session_ends() -> None:
    core = RouterCore(epoch=7)
    bob = hello(core, "bob", epoch=1)
    cli = hello(core, "bob", epoch=2, send_only=True)
    core.handle(bob, [encode(PeerState("live %3 " + "x" * 600))], 0.0)
    core.handle(cli, [encode(PeerState("not the agent"))], 0.0)  # send-only: ignored
    (item,) = core.peers(0.0)
    assert item.name == "bob" and item.state.startswith("live %3 ")
    assert len(item.state) == 512  # kept bounded
    core.handle(bob, [encode(Bye())], 0.0)
    assert core.peers(0.0) == []  # offline, no mail: not listed, and the state is gone
    bob = hello(core, "bob", epoch=3)
    assert core.peers(0.0)[0].state == ""


def test_a_known_sender_saying_hello_again_counts_as_resumed() -> None:
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    hello(core, "bob")
    assert core.stats["resumed"] == 0  # new incarnations
    send(core, alice, [SendItem(1, "bob")])
    hello(core, "alice", attempt=2)  # it lost the router and comes back: same epoch
    hello(core, "alice", attempt=2)  # a stale copy changes nothing
    assert core.stats["resumed"] == 1
    hello(core, "alice", epoch=2)  # a restarted alice is a new incarnation, not a resume
    assert core.stats["resumed"] == 1


def test_draining_is_a_state_entered_once_and_refuses_new_mail() -> None:
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    replies(core)
    core.begin_drain()
    with pytest.raises(LocalProtocolError, match="'begin_drain' is not allowed in state"):
        core.begin_drain()
    send(core, alice, [SendItem(1, "bob")])
    assert [f.code for _, f in replies(core) if isinstance(f, Nack)] == [Code.SHUTTING_DOWN]


def test_a_session_ends_once_and_only_for_a_known_reason() -> None:
    core = RouterCore(epoch=7)
    bob = hello(core, "bob")
    session = core.sessions.get(bob)
    assert session is not None
    with pytest.raises(LocalProtocolError, match="no such ending"):
        core.sessions.end(session, "bored", 0.0)
    core.sessions.end(session, "bye", 0.0)
    with pytest.raises(LocalProtocolError, match="ended twice"):
        core.sessions.end(session, "gone", 0.0)
    assert set(ENDINGS) == {"bye", "gone", "resumed", "replaced", "taken_over", "revoked"}


def test_the_core_returns_log_lines_rate_limited_and_never_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = RouterCore(epoch=7)
    for now in (0.0, 1.0, 2.0):
        core.handle(b"x", [b"\xc1garbage"], now)
    lines = core.take_logs()
    assert len(lines) == 1 and "bad frame from b'x': BAD_FRAME" in lines[0]
    assert core.stats["bad_frames"] == 3  # the counter carries the total
    core.handle(b"x", [b"\xc1garbage"], 10.0)
    assert len(core.take_logs()) == 1 and core.take_logs() == []
    assert caplog.records == []


def test_senders_queued_behind_a_held_message_hear_why_they_wait() -> None:
    core = RouterCore(epoch=7)
    alice, carol = hello(core, "alice", epoch=1), hello(core, "carol", epoch=2)
    bob = hello(core, "bob", window=1)  # an agent: one message in the pane at a time
    replies(core)
    send(core, alice, [SendItem(1, "bob", notify=True)])
    send(core, carol, [SendItem(1, "bob", notify=True)])
    send(core, alice, [SendItem(2, "bob", prev=1)], base=1)  # no notify: not told
    deliver = next(f for i, f in replies(core) if i == bob and isinstance(f, Deliver))
    core.handle(bob, [encode(Hold(deliver.session, 1, "refused_draft: 'git sta'"))], 1.0)
    out = replies(core, 1.0)
    assert (alice, Held(1, "refused_draft: 'git sta'")) in out
    assert (carol, Held(1, "queued: 1st behind alice/1/1, held: refused_draft: 'git sta'")) in out
    assert len([f for _, f in out if isinstance(f, Held)]) == 2


def test_acks_of_deliveries_never_sent_are_ignored_and_counted() -> None:
    core = RouterCore(epoch=7)
    alice, bob = hello(core, "alice", epoch=1), hello(core, "bob", epoch=2)
    send(core, alice, [SendItem(1, "bob"), SendItem(2, "bob", 1)])
    out = replies(core)
    assert [f for i, f in out if i == bob and isinstance(f, Deliver)][0].items[-1].dseq == 2
    core.handle(bob, [encode(Ack(2, 3))], 0.1)  # dseq 3 was never sent: nothing is acked
    core.handle(bob, [encode(Ack(9, 1))], 0.1)  # no such session yet
    core.handle(alice, [encode(Ack(1, 1))], 0.1)  # alice's own session has had nothing
    core.handle(bob, [encode(Ack(1, 2))], 0.1)  # another (earlier) session's: stale, ignored
    assert core.stats["bad_acks"] == 3 and core.stats["acked"] == 0
    assert [(m.queued, m.inflight) for m in core.peers(0.2) if m.name == "bob"] == [(0, 2)]
    assert any("Ack of deliveries never sent" in line for line in core.take_logs())
    core.handle(bob, [encode(Ack(2, 2))], 0.2)
    assert core.stats["acked"] == 2 and core.stats["bad_acks"] == 3


def test_every_refused_message_is_counted_nacked_or_withheld() -> None:
    """One retriable Nack per sender and recipient per turn; the others of the turn are
    counted withheld, so nack_X + withheld_X is every message refused X."""
    core = RouterCore(epoch=7, options=RouterOptions(mailbox_max_messages=1))
    alice = hello(core, "alice")
    replies(core)
    for seq in range(1, 5):  # one frame each, all in one turn
        send(core, alice, [SendItem(seq, "bob")], base=seq)
    send(core, alice, [SendItem(5, "carol", 10**6)], base=5)  # prev never sent
    send(core, alice, [SendItem(6, "carol", 10**6)], base=5)
    out = replies(core)
    nacks = [(f.seq, Code(f.code)) for _, f in out if isinstance(f, Nack)]
    assert nacks == [(2, Code.MAILBOX_FULL), (5, Code.OUT_OF_ORDER)]
    stats = core.stats
    assert stats["accepted"] == 1
    assert (stats["nack_mailbox_full"], stats["withheld_mailbox_full"]) == (1, 2)
    assert (stats["nack_out_of_order"], stats["withheld_out_of_order"]) == (1, 1)


# -- the limits, one by one -------------------------------------------------------------------


def test_names_past_max_name_are_refused_in_a_hello_and_as_a_recipient() -> None:
    core = RouterCore(epoch=7)
    long = "x" * 129
    core.handle(b"long/1", [encode(Hello(PROTOCOL_VERSION, long, 1))], 0.0)
    alice = hello(core, "alice")
    send(core, alice, [SendItem(1, long), SendItem(2, "x" * 128)])
    out = replies(core)
    nacks = [(i, f.seq, f.code) for i, f in out if isinstance(f, Nack)]
    assert nacks == [(b"long/1", 0, Code.INVALID_NAME), (alice, 1, Code.INVALID_NAME)]
    assert core.stats["accepted"] == 1  # the 128-character name is a name


def test_a_header_past_max_header_is_too_large_and_dropped_whole() -> None:
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    replies(core)
    core.handle(alice, [encode(Send(1, [SendItem(1, "b" * MAX_HEADER)])), b"x"], 0.0)
    assert [(f.seq, f.code) for _, f in replies(core) if isinstance(f, Nack)] == [
        (0, Code.TOO_LARGE)
    ]
    assert core.stats["bad_frames"] == 1 and core.stats["accepted"] == 0


def test_a_mailbox_is_bounded_in_bytes_and_the_router_in_bytes_and_mailboxes() -> None:
    held = 20 + 3 * ENTRY_COST  # three messages' payloads and their entries
    opts = RouterOptions(mailbox_max_bytes=10, max_bytes=held, max_mailboxes=3, max_payload=8)
    core = RouterCore(epoch=7, options=opts)
    alice = hello(core, "alice")
    replies(core)
    sends = [("bob", 8), ("bob", 8), ("carol", 8), ("dan", 5), ("erin", 1), ("carol", 9)]
    sends += [("dan", 4)]
    items = [SendItem(seq, to) for seq, (to, _) in enumerate(sends, start=1)]
    core.handle(alice, [encode(Send(1, items)), *(b"x" * n for _, n in sends)], 0.0)
    nacks = [(f.seq, Code(f.code)) for _, f in replies(core) if isinstance(f, Nack)]
    assert nacks == [
        (2, Code.MAILBOX_FULL),  # bob's 8 + 8 bytes > mailbox_max_bytes
        (4, Code.ROUTER_FULL),  # 16 + 5 bytes held > max_bytes
        (5, Code.ROUTER_FULL),  # a fourth mailbox > max_mailboxes
        (6, Code.TOO_LARGE),  # 9 bytes > max_payload
    ]
    assert core.stats["accepted"] == 3  # seqs 1, 3 and 7: 20 bytes, the router's all


def test_spilled_mail_the_disk_no_longer_holds_leaves_no_bytes_counted() -> None:
    core = RouterCore(epoch=7, journaled=True)
    core.restore(Restored(spills=[Spill("bob", 3, 300, 0)]), 0.0)
    assert core.delivery.nbytes == 300 + 3 * ENTRY_COST
    core.paged_in("bob", [], 1.0)  # the page came back empty: believe the disk
    assert core.delivery.nbytes == 0 and core.delivery.mailboxes["bob"].nbytes == 0


def test_empty_payloads_count_against_max_bytes() -> None:
    """Each message held costs its entry besides its payload: empty ones fill the router too."""
    core = RouterCore(epoch=7, options=RouterOptions(max_bytes=10 * ENTRY_COST))
    alice = hello(core, "alice")
    replies(core)
    items = [SendItem(seq, "bob") for seq in range(1, 13)]
    core.handle(alice, [encode(Send(1, items)), *(b"" for _ in items)], 0.0)
    nacks = [(f.seq, Code(f.code)) for _, f in replies(core) if isinstance(f, Nack)]
    assert nacks == [(11, Code.ROUTER_FULL)]  # and seq 12 withheld, as after any refusal
    assert core.stats["accepted"] == 10 and core.stats["withheld_router_full"] == 1


def test_every_kind_of_reject_is_logged_at_most_once_per_10_s_and_counted_always() -> None:
    """A flood of rejects costs the log one line per kind per LOG_EVERY; the counters carry
    the totals; a line never quotes a payload."""
    core = RouterCore(epoch=7, options=RouterOptions(mailbox_max_messages=1))
    alice = hello(core, "alice")
    core.take_logs()
    for i in range(50):
        now = i * 0.1  # five seconds of it
        core.handle(alice, [b"\xc1 not msgpack"], now)
        core.handle(alice, [encode(Ack(1, 10**6))], now)
        send(core, alice, [SendItem(1 + 2 * i, "bob")], base=1 + 2 * i)
        send(core, alice, [SendItem(2 + 2 * i, "bad name!")], base=2 + 2 * i)
        core.take_output(now)
    lines = core.take_logs()
    assert len(lines) == 4, lines  # bad frame, bad ack, MAILBOX_FULL, INVALID_NAME
    assert all("(further ones for 10 s only counted)" in line for line in lines)
    assert not any("payload" in line or "x'" in line for line in lines)
    stats = core.stats
    assert (stats["bad_frames"], stats["bad_acks"], stats["nack_invalid_name"]) == (50, 50, 50)
    assert stats["nack_mailbox_full"] + stats.get("withheld_mailbox_full", 0) == 49
    core.handle(alice, [b"\xc1 again"], 10.0)  # the window has passed
    assert len(core.take_logs()) == 1


def test_packed_frames_are_taken_and_given_to_who_said_so_and_bad_cuts_refused() -> None:
    """A Send's payloads packed in one part are accepted like a part each; a Deliver is packed
    for a recipient whose Hello said ``packed``, a part each for one that did not (an older
    client); a packed Send whose sizes do not cut its part is a bad frame, and nothing of it
    is accepted."""
    core = RouterCore(epoch=7)
    alice = hello(core, "alice")
    old, new = hello(core, "old"), hello(core, "new", packed=True)
    welcomes = {i: f for i, f in replies(core) if isinstance(f, Welcome)}
    assert welcomes[alice].packed is True  # the router takes packed Sends from anyone
    items = [SendItem(1, "old"), SendItem(2, "new"), SendItem(3, "new", prev=2)]
    core.handle(alice, [encode(Send(1, items, [1, 2, 3])), b"abbccc"], 0.0)
    out = {i: parts for i, parts, _ in core.take_output(0.0)}
    to_old, to_new = decode(out[old][0]), decode(out[new][0])
    assert isinstance(to_old, Deliver) and isinstance(to_new, Deliver)
    assert to_old.sizes == [] and out[old][1:] == [b"a"]
    assert to_new.sizes == [2, 3] and out[new][1:] == [b"bbccc"]
    assert decode(out[alice][0]) == Receipt(3, [])
    for sizes, body in (([1, 2], b"abbccc"), ([1, 2, 4], b"abbccc"), ([6], b"abbccc")):
        bad = [SendItem(4, "old"), SendItem(5, "old", prev=4), SendItem(6, "old", prev=5)]
        core.handle(alice, [encode(Send(1, bad, sizes)), body], 0.0)
        (nack,) = replies(core)
        assert nack[1] == Nack(0, Code.BAD_FRAME, "Send parts do not fit its items")
    assert core.stats["bad_frames"] == 3 and core.stats["accepted"] == 3


def test_a_packed_deliver_part_holds_at_most_max_payload_bytes() -> None:
    core = RouterCore(epoch=7, options=RouterOptions(max_payload=10))
    alice, bob = hello(core, "alice"), hello(core, "bob", packed=True)
    replies(core)
    items = [SendItem(1, "bob"), SendItem(2, "bob", prev=1), SendItem(3, "bob", prev=2)]
    core.handle(alice, [encode(Send(1, items, [4, 4, 4])), b"aaaabbbbcccc"], 0.0)
    delivers = [parts for i, parts, _ in core.take_output(0.0) if i == bob]
    assert [p[1:] for p in delivers] == [[b"aaaabbbb"], [b"cccc"]]
