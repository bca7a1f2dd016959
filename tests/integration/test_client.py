"""The sync Client's threads: callers in several threads, and close() while one waits."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from zmqswarm import Client, ClientClosedError, ZsTimeoutError

from ..conftest import Procs, wait_for


def test_messages_reach_callers_waiting_in_several_threads(procs: Procs) -> None:
    procs.router()
    got: list[list[bytes]] = [[] for _ in range(4)]
    with Client("bob", router=procs.url) as bob, Client("alice", router=procs.url) as alice:

        def reader(mine: list[bytes]) -> None:
            try:
                while True:
                    mine.append(bob.recv(timeout=1.0).payload)
            except ZsTimeoutError:  # the stream is over
                return

        threads = [threading.Thread(target=reader, args=(mine,)) for mine in got]
        for t in threads:
            t.start()
        wait_for(lambda: len(bob._io.waiting) == 4, 10, "four threads asleep in recv()")
        for i in range(400):
            alice.send("bob", b"%d" % i)
        for t in threads:
            t.join(30)
    everything = sorted(int(p) for mine in got for p in mine)
    assert everything == list(range(400))  # each message handed to exactly one caller
    for mine in got:  # and each thread saw its share in order
        assert [int(p) for p in mine] == sorted(int(p) for p in mine)


def test_a_caller_asleep_in_recv_is_woken_at_once(procs: Procs) -> None:
    """recv() sleeps in slices of at most 1 s; mail must end the slice, not wait it out."""
    procs.router()
    with Client("bob", router=procs.url) as bob, Client("alice", router=procs.url) as alice:
        alice.send("bob", b"warm-up").wait("accepted")
        assert bob.recv(timeout=10).payload == b"warm-up"
        for _ in range(3):
            taken: list[float] = []
            thread = threading.Thread(target=_timed_recv, args=(bob, taken))
            thread.start()
            wait_for(lambda: len(bob._io.waiting) == 1, 10, "bob asleep in recv()")
            alice.send("bob", b"now")
            thread.join(10)
            assert taken and taken[0] < 0.5, taken


def _timed_recv(client: Client, taken: list[float]) -> None:
    start = time.monotonic()
    client.recv(timeout=30)
    taken.append(time.monotonic() - start)


def test_close_ends_a_recv_waiting_in_another_thread(tmp_path: Path) -> None:
    client = Client("idle", router=f"ipc://{tmp_path}/no-router")
    outcome: list[BaseException] = []

    def waiter() -> None:
        try:
            client.recv(timeout=30)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    wait_for(lambda: len(client._io.waiting) == 1, 10, "the caller asleep in recv()")
    client.close(timeout=0)
    thread.join(0.5)  # at once: not after its 30 s, nor after its 1 s wait slice
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], ClientClosedError)


@pytest.mark.parametrize("threads", [1, 4])
def test_tickets_are_answered_to_callers_in_any_thread(procs: Procs, threads: int) -> None:
    procs.router()
    answered: list[str] = []
    with Client("bob", router=procs.url), Client("alice", router=procs.url) as alice:

        def sender(k: int) -> None:
            for i in range(50):
                ticket = alice.send("bob", b"%d-%d" % (k, i)).wait("accepted", timeout=10)
                answered.append(str(ticket.id))

        workers = [threading.Thread(target=sender, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
    assert len(set(answered)) == 50 * threads


def test_a_caller_in_a_tight_send_loop_leaves_the_io_thread_room(procs: Procs) -> None:
    """The I/O thread gives up the GIL at every part it sends; a caller that never blocks
    used to keep it for whole switch intervals, and nothing left until its loop ended."""
    procs.router()
    with Client("alice", router=procs.url) as alice:
        alice.send("bob", b"warm").wait("accepted", timeout=10)
        for _ in range(50_000):
            alice.send("bob", b"x")
        assert alice._io.settled > 1, "nothing was receipted while the caller looped"
        assert alice.close(timeout=30) == []


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
