"""The sync Client drives its engine on the caller's own thread: what that promises.

A caller that computes for seconds keeps its session, its credit and its mail (libzmq's own
thread carries what it sent and answers heartbeats); a process that is stopped is seen gone
within 2 s and its unacked mail moves on; a Client used from another thread says so."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from zmqswarm import Client, DeliveryError, NameTakenError, WrongThreadError, ZsTimeoutError
from zmqswarm.observe import list_peers
from zmqswarm.protocol import ClientOptions, Send

from ..helpers import FakeRouter, Procs, backlog, router_stats, wait_for


@pytest.mark.solo
def test_a_caller_computing_for_seconds_keeps_its_session_and_its_mail(
    procs: Procs,
) -> None:
    router = procs.router()
    with Client("carol", router=procs.url) as carol, Client("alice", router=procs.url) as alice:
        carol.wait_ready(10)
        bob = procs.peer("busy", "bob", procs.url, "20", "carol", "5")
        assert bob.stdout is not None
        assert bob.stdout.readline().strip() == "SPIN"
        spin_from = time.monotonic()
        # What bob sent just before its loop arrives while it computes: libzmq carries it.
        late = []
        for _ in range(20):
            msg = carol.recv(timeout=10)
            late.append(time.monotonic_ns() - int(msg.payload))
        assert max(late) < 50_000_000, f"slowest took {max(late) / 1e6:.1f} ms"
        # Its name stays its own while it computes: a newcomer is refused, not welcomed.
        impostor = Client("bob", router=procs.url)
        try:
            with pytest.raises(NameTakenError):
                impostor.wait_ready(3)
        finally:
            impostor.close(timeout=0)
        for i in range(100):
            alice.send("bob", b"%d" % i)
        assert alice.close(timeout=10) == []
        assert time.monotonic() - spin_from < 5, "the checks ran after bob's loop had ended"
        out = bob.communicate(timeout=30)[0].split()
    assert out[:2] == ["GOT", "100"]
    assert set(out[2].split(",")) == {"1"}  # every message handed over once: no redelivery
    stats = router_stats(router)
    assert stats["redelivered"] == 0 and stats["disconnected"] == 0


@pytest.mark.solo
def test_a_stopped_client_is_offline_within_2_s_and_its_mail_moves_on(procs: Procs) -> None:
    procs.router()
    with Client("alice", router=procs.url) as alice:
        for i in range(10):
            alice.send("bob", b"%d" % i)
        holder = procs.peer("hold", "bob", procs.url, "10")
        assert holder.stdout is not None
        line = holder.stdout.readline().strip()
        assert line == "HOLDING 10", holder.stderr.read() if holder.stderr else line
        os.kill(holder.pid, signal.SIGSTOP)
        stopped = time.monotonic()

        def offline() -> bool:
            return not any(p.online for p in list_peers(procs.url) if p.name == "bob")

        wait_for(offline, 5, "bob shown offline")
        assert time.monotonic() - stopped < 2.0
        with Client("bob", router=procs.url) as successor:
            got = [successor.recv(timeout=10) for _ in range(10)]
        assert [m.payload for m in got] == [b"%d" % i for i in range(10)]
        assert {m.attempt for m in got} == {2}  # the first incarnation took them, unacked


def test_a_client_used_from_another_thread_says_whose_it_is(tmp_path: Path) -> None:
    client = Client("alice", router=f"ipc://{tmp_path}/nobody")
    ticket = client.send("bob", b"x")
    errors: list[BaseException] = []

    def misuse() -> None:
        for call in (
            lambda: client.send("bob", b"y"),
            lambda: client.recv(timeout=0),
            lambda: ticket.state,
            lambda: ticket.wait("accepted", timeout=0),
            lambda: client.close(timeout=0),
            lambda: client.batch().__enter__(),
        ):
            try:
                call()
            except WrongThreadError as exc:
                errors.append(exc)

    thread = threading.Thread(target=misuse)
    thread.start()
    thread.join(10)
    assert len(errors) == 6
    assert "one Client per thread, or an AsyncClient" in str(errors[0])
    assert isinstance(errors[0], RuntimeError)
    assert ticket.state == "pending"  # the owner still can
    assert len(client.close(timeout=0)) == 1


def test_a_tight_send_loop_takes_receipts_as_it_goes(procs: Procs) -> None:
    """Every send() takes what the socket holds: 50k sends through a 4096-message window
    would stall if receipts waited for a wait() call."""
    procs.router()
    with Client("alice", router=procs.url) as alice:
        first = alice.send("bob", b"first")
        for _ in range(50_000):
            alice.send("bob", b"x")
        assert first.state == "accepted"
        assert alice.close(timeout=30) == []


def test_each_send_is_on_the_wire_at_once_and_a_batch_leaves_as_one_frame(
    tmp_path: Path,
) -> None:
    """Against a router played by a raw ROUTER socket: outside a batch every send() is a
    frame on the socket when it returns; inside ``batch()`` sends to several recipients
    gather, and leave in one frame when the outermost block ends, even on an exception."""
    router = FakeRouter(tmp_path)
    try:
        with Client("alice", router=router.url) as alice:
            router.welcome("alice", alice.epoch)
            alice.wait_ready(5)
            for i in range(3):
                alice.send("bob", b"%d" % i)
            assert [len(f.items) for f in router.frames(2000) if isinstance(f, Send)] == [1, 1, 1]
            with alice.batch():
                tickets = [alice.send(f"bob{i % 3}", b"%d" % i) for i in range(30)]
                with alice.batch():  # nested: only the outermost end sends
                    tickets += alice.send_many("carol", [b"a", b"b"])
                assert router.frames(100) == []
            (frame,) = router.frames(2000)
            assert isinstance(frame, Send)
            want = [f"bob{i % 3}" for i in range(30)] + ["carol", "carol"]
            assert [item.to for item in frame.items] == want
            assert [t.id.seq for t in tickets] == [item.seq for item in frame.items]
            with pytest.raises(KeyError), alice.batch():
                alice.send("dave", b"x")
                raise KeyError("the caller's own error")
            (frame,) = router.frames(2000)
            assert isinstance(frame, Send) and [item.to for item in frame.items] == ["dave"]
            alice.close(timeout=0)
    finally:
        router.close()


def test_a_wait_inside_a_batch_sends_what_the_batch_gathered(procs: Procs) -> None:
    """A call that waits inside ``batch()`` runs turns, and a turn sends what was gathered:
    a ticket's wait gets its receipt, and a send that waits for room in a full outbox makes
    that room, after a quiet spell too (the router silent, no timer due soon)."""
    procs.router()
    with Client("alice", router=procs.url, options=ClientOptions(max_outbox=8)) as alice:
        alice.wait_ready(5)
        time.sleep(0.2)  # a quiet spell (not a synchronisation): nothing has been said since
        alice.poll()
        with alice.batch():
            assert alice.send("bob", b"x").wait("accepted", timeout=5).state == "accepted"
            tickets = [alice.send("bob", b"%d" % i) for i in range(20)]  # 2.5 outboxes
        assert tickets[-1].wait("accepted", timeout=5).state == "accepted"
        assert alice.close(timeout=5) == []


def test_recv_many_hands_over_what_waits_in_order_and_within_its_limit(procs: Procs) -> None:
    procs.router()
    total = 500
    sent = backlog(procs.url, "bob", total)
    with Client("bob", router=procs.url) as bob:
        batches: list[list[bytes]] = []
        while sum(map(len, batches)) < total:
            batches.append([m.payload for m in bob.recv_many(limit=10, timeout=10)])
        assert [p for b in batches for p in b] == sent
        assert max(map(len, batches)) == 10
        assert len(batches) < total / 2, "a backlog should come in bursts, not one by one"
        with pytest.raises(ZsTimeoutError):
            bob.recv_many(timeout=0.05)
        with pytest.raises(ValueError, match="at least 1"):
            bob.recv_many(limit=0)
    with Client("alice", router=procs.url) as alice:  # every one was acked: nothing comes again
        assert alice.send("bob", b"last").wait("accepted", 10).state == "accepted"
    with Client("bob", router=procs.url) as bob:
        assert [m.payload for m in bob.recv_many(timeout=10)] == [b"last"]


def test_a_ticket_already_settled_needs_no_round_trip(procs: Procs) -> None:
    procs.router()
    with Client("alice", router=procs.url) as alice:
        ticket = alice.send("bob", b"x").wait("accepted", timeout=10)
        os.kill(int(procs.children[0].pid), signal.SIGSTOP)  # the router can answer nothing
        try:
            start = time.monotonic()
            assert ticket.wait("accepted", timeout=5) is ticket
            assert ticket.state == "accepted"
            assert time.monotonic() - start < 0.1
        finally:
            os.kill(int(procs.children[0].pid), signal.SIGCONT)


def test_a_refusal_read_while_its_ticket_waits_fails_the_ticket(procs: Procs) -> None:
    """The frame a wait reads is handed over before the rest of the turn only when it brought
    no events: a Nack read while ``wait()`` blocks must reach the ticket as a failure."""
    config = procs.tmp / "router.toml"
    config.write_text("[router]\nmax-payload = 1000\n")
    procs.router("--config", str(config))
    with Client("alice", router=procs.url) as alice:
        alice.wait_ready(10)
        too_big = alice.send("bob", b"x" * 2000)
        fits = alice.send("bob", b"x" * 1000)
        with pytest.raises(DeliveryError, match="too_large"):
            too_big.wait("accepted", timeout=10)  # the Nack comes while this waits
        assert too_big.state == "failed"
        assert fits.wait("accepted", timeout=10).state == "accepted"


def test_leaving_a_with_block_logs_what_close_could_not_hand_over(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """close() returns the unreceipted tickets; a with block drops that answer, so it logs
    it (and an explicit close() does not: its caller reports it, as `zs send` does)."""
    url = f"ipc://{tmp_path}/nobody"
    quiet = Client("alice", router=url)
    quiet.send("bob", b"never accepted")
    assert len(quiet.close(timeout=0)) == 1
    assert "unreceipted" not in caplog.text
    with Client("alice", router=url) as alice:
        alice.send("bob", b"never accepted")
    assert "alice closed with 1 unreceipted messages" in caplog.text
