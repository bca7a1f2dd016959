"""Senders and recipients that resume after kill -9, with real processes: a sender's spool
(``Client(spool=)``) and a recipient's state (``Client(state=)``). Each sender logs the seq of
every ticket once ``send()`` has returned for it, each recipient what it handed over, so the
checks count what was promised against what arrived."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from zmqswarm import AsyncClient, Client, ConfigError, DeliveryError, StoreInUseError

from ..helpers import Procs, handed, last_line, router_stats, wait_for
from .test_faults import offline

TOTAL = 5000
RATE = 2000  # messages a second: a 2.5 s stream, for a kill to land in the middle of


def sent_seqs(log: Path) -> list[int]:
    text = log.read_text() if log.exists() else ""
    return [int(x) for x in text[: text.rfind("\n") + 1].split()]  # whole lines only


def first_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


@pytest.mark.timeout(90)
@pytest.mark.parametrize(
    ("fault", "total", "rate"), [("mid-stream", 30_000, 0), ("router-paused", TOTAL, RATE)]
)
def test_a_sender_killed_mid_stream_resends_from_its_spool_exactly_once_in_order(
    procs: Procs, tmp_path: Path, fault: str, total: int, rate: int
) -> None:
    """alice sends through a spool, flat out, and is SIGKILLed at a random moment (inside
    send() as likely as not); or, paced, with the router paused, after sending 200 more that
    nobody receipted. Restarted on the same spool, she resends what was not receipted and
    goes on: bob gets every seq once, in order."""
    seed = random.randrange(1 << 30)
    kill_at = random.Random(seed).randint(total // 15, total * 2 // 5)
    router = procs.router()
    out, done, log, spool = (tmp_path / n for n in ("bob.out", "bob.done", "sent", "spool"))
    bob = procs.peer("take", "bob", procs.url, str(out), "--by-ticket", "--until", str(done))
    args = ("spool", "alice", procs.url, str(spool), "bob", str(total), str(log), str(rate))
    alice = procs.peer(*args, str(kill_at) if fault == "mid-stream" else "0")
    assert first_line(alice) == "RESUMED 0"
    if fault == "router-paused":
        wait_for(lambda: len(sent_seqs(log)) >= kill_at, 20, f"{kill_at} sends")
        router.send_signal(signal.SIGSTOP)
        stopped = len(sent_seqs(log))  # the sends logged after this one nobody can receipt
        wait_for(lambda: len(sent_seqs(log)) >= stopped + 200, 20, "sends nobody receipts")
        alice.kill()
    assert alice.wait(30) == -signal.SIGKILL
    router.send_signal(signal.SIGCONT)
    returned = sent_seqs(log)
    assert len(returned) < total, "alice was done before the kill: the fault missed"
    alice = procs.peer(*args)
    resumed = int(first_line(alice).split()[1])
    assert last_line(alice, 60) == "DONE"
    wait_for(lambda: any(h.seq == total for h in handed(out)), 30, "bob has the last")
    done.touch()
    assert last_line(bob).startswith("DONE")
    got = [h.seq for h in handed(out)]
    print(  # noqa: T201 - the report's numbers (pytest -s)
        f"\n{fault}: seed {seed}, killed after {len(returned)} sends returned,"
        f" {resumed} resumed from the spool; bob got {len(got)}"
    )
    assert got == list(range(1, total + 1)), "lost, duplicated or reordered"
    assert set(returned) <= set(got)
    if fault == "router-paused":
        assert resumed >= 200, "the kill left nothing unreceipted: the fault missed"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("ack", ["manual", "auto", "auto-many"])
def test_a_recipient_killed_mid_stream_is_never_handed_an_acked_message_again(
    procs: Procs, tmp_path: Path, ack: str
) -> None:
    """alice sends flat out; bob (a backlog builds up) is SIGKILLed at a random point and
    restarted on the same state. Every message arrives once, in order, but for the one the
    application had at the kill: with manual acks (written, then acked) it may come twice,
    saying so (attempt > 1); with auto_ack (acked as recv() returns it, then written) it is
    never handed twice, and the application may have lost it before writing it. With
    recv_many(16) and auto_ack that is the rest of the last burst returned."""
    seed = random.randrange(1 << 30)
    total = 30_000
    kill_at = random.Random(seed).randint(2000, 12000)
    router = procs.router()
    one, two, state = tmp_path / "bob1.out", tmp_path / "bob2.out", tmp_path / "bob.state"
    auto = {"manual": [], "auto": ["--auto"], "auto-many": ["--auto", "--many", "16"]}[ack]
    take = ("take", "bob", procs.url, "--state", str(state), *auto)
    bob = procs.peer(*take[:3], str(one), *take[3:], "--die-after", str(kill_at))
    alice = procs.peer("send", "alice", procs.url, str(total), "bob")
    assert bob.wait(30) == -signal.SIGKILL
    wait_for(lambda: offline(procs.url, "bob"), 5, "bob#1 seen gone")  # else: NAME_TAKEN
    bob = procs.peer(*take[:3], str(two), *take[3:], "--last", f"alice:{total - 1}")
    assert last_line(bob, 60).startswith("DONE")
    assert last_line(alice, 60) == "DONE"
    h1, h2 = handed(one), handed(two)
    again = sorted({h.seq for h in h1} & {h.seq for h in h2})
    redelivered = router_stats(router)["redelivered"]
    seqs = [h.seq for h in h1] + [h.seq for h in h2 if h.seq not in again]
    lost = sorted(set(range(total)) - set(seqs))
    print(  # noqa: T201 - the report's numbers (pytest -s)
        f"\n{ack}, seed {seed}: bob#1 handed {len(h1)}, bob#2 {len(h2)}; the router delivered"
        f" {redelivered} again, bob#2 handed {sum(h.attempt > 1 for h in h2)} of them;"
        f" handed twice: {again}, never written: {lost}"
    )
    if ack == "manual":
        assert again in ([], [h1[-1].seq]), "an acked message was handed over again"
        assert all(h.attempt > 1 for h in h2 if h.seq in again)
        assert lost == []
    else:
        assert again == [], "a message was handed over twice"
        # recv() had returned it (recv_many(16): them), and the kill came first.
        burst = 16 if ack == "auto-many" else 1
        assert lost == list(range(h1[-1].seq + 1, h1[-1].seq + 1 + len(lost)))
        assert len(lost) <= burst
    assert sorted(seqs) == seqs, "reordered"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("ack", ["manual", "auto"])
def test_messages_acked_by_a_killed_recipient_are_not_handed_again(
    procs: Procs, tmp_path: Path, ack: str
) -> None:
    """bob#1 acks 100 messages (its state says so) and is SIGKILLed before any Ack but the
    first leaves (acks held back 60 s): the router delivers them again to bob#2, which hands
    over none of them, and then the mail that is new."""
    router = procs.router()
    one, two, state = tmp_path / "bob1.out", tmp_path / "bob2.out", tmp_path / "bob.state"
    auto = ["--auto"] if ack == "auto" else []
    hold = ("--state", str(state), "--ack-delay", "60", "--kill-after", "100", *auto)
    bob = procs.peer("take", "bob", procs.url, str(one), *hold)
    alice = procs.peer("send", "alice", procs.url, "100", "bob")
    assert last_line(alice) == "DONE"
    assert bob.wait(30) == -signal.SIGKILL
    assert [h.seq for h in handed(one)] == list(range(100))
    wait_for(lambda: offline(procs.url, "bob"), 5, "bob#1 seen gone")  # else: NAME_TAKEN
    bob = procs.peer(
        "take", "bob", procs.url, str(two), "--state", str(state), "--last", "carol:9", *auto
    )
    carol = procs.peer("send", "carol", procs.url, "10", "bob")
    assert last_line(bob).startswith("DONE 10")
    assert last_line(carol) == "DONE"
    assert [(h.sender, h.seq) for h in handed(two)] == [("carol", i) for i in range(10)]
    stats = router_stats(router)
    assert stats["redelivered"] >= 99, stats  # they did come again: the state dropped them


@pytest.mark.timeout(30)
def test_a_spool_carries_unreceipted_messages_to_the_next_client_sync_and_async(
    procs: Procs, tmp_path: Path
) -> None:
    """No router: both clients keep what they sent; the next client on each spool, with a
    router, resends it under the same epoch and lists it in ``resumed``."""
    url = procs.url
    sync_spool, async_spool = tmp_path / "sync.spool", tmp_path / "async.spool"
    first = Client("alice", router=url, spool=sync_spool)
    sent = [first.send("bob", f"s{i}".encode()) for i in range(3)]
    with pytest.raises(StoreInUseError, match=str(sync_spool)):
        Client("alice", router=url, spool=sync_spool)
    assert [str(t) for t in first.close(timeout=0.1)] == [str(t) for t in sent]

    async def offline() -> list[str]:
        carol = AsyncClient("carol", router=url, spool=async_spool)
        carol.start()
        sent = [str(await carol.send("bob", b"a0")), str(await carol.send("bob", b"a1"))]
        assert [str(t) for t in await carol.close(timeout=0.1)] == sent
        return sent

    async_sent = asyncio.run(offline())
    procs.router()
    with Client("bob", router=url) as bob:
        again = Client("alice", router=url, spool=sync_spool)
        assert [str(t) for t in again.resumed] == [str(t) for t in sent]  # same epoch, seqs
        fourth = again.send("bob", b"s3")
        assert fourth.id.epoch == sent[0].id.epoch and fourth.seq == 4
        for t in again.resumed:
            t.wait("accepted", 10)
        assert again.close() == []

        async def online() -> list[str]:
            async with AsyncClient("carol", router=url, spool=async_spool) as carol:
                for t in carol.resumed:
                    await t.wait("accepted", 10)
                return [str(t) for t in carol.resumed]

        assert asyncio.run(online()) == async_sent
        got = sorted((m.sender, m.text) for m in (bob.recv(timeout=10) for _ in range(6)))
    assert got == [("alice", "s0"), ("alice", "s1"), ("alice", "s2"), ("alice", "s3")] + [
        ("carol", "a0"),
        ("carol", "a1"),
    ]


@pytest.mark.timeout(30)
def test_a_spooled_message_whose_ttl_passed_fails_and_is_not_sent(
    procs: Procs, tmp_path: Path
) -> None:
    spool = tmp_path / "alice.spool"
    first = Client("alice", router=procs.url, spool=spool)
    stale = first.send("bob", b"stale", ttl=0.05)
    fresh = first.send("bob", b"fresh")
    deadline = time.time() + 0.05
    first.close(timeout=0)
    wait_for(lambda: time.time() > deadline, 5, "the ttl to pass")
    procs.router()
    with Client("alice", router=procs.url, spool=spool) as again:
        assert [t.seq for t in again.resumed] == [stale.seq, fresh.seq]
        with pytest.raises(DeliveryError, match="expired: ttl passed in the spool"):
            again.resumed[0].wait("accepted", 5)
        again.resumed[1].wait("accepted", 5)
    with Client("alice", router=procs.url, spool=spool) as third:
        assert third.resumed == []  # settled, both: neither goes again
    with Client("bob", router=procs.url) as bob:
        assert bob.recv(timeout=5).text == "fresh"


class _Interrupted(Exception):
    pass


@pytest.mark.timeout(30)
def test_a_client_that_fails_to_start_lets_go_of_its_files(
    procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether the socket could not be made (a bad endpoint) or the start failed after it
    was (here: the first turn, interrupted), the spool and the state are let go: the next
    client opens them at once, and nothing is half-held."""
    spool, state = tmp_path / "alice.spool", tmp_path / "alice.state"
    with pytest.raises(ConfigError, match="cannot connect"):
        Client("alice", router="tcp://127.0.0.1:notaport", spool=spool, state=state)

    def interrupted(self: Client) -> float:
        raise _Interrupted

    with monkeypatch.context() as patched:
        patched.setattr(Client, "_run", interrupted)
        with pytest.raises(_Interrupted):
            Client("alice", router=procs.url, spool=spool, state=state)
    procs.router()
    with Client("alice", router=procs.url, spool=spool, state=state) as alice:
        alice.send("alice", b"to myself").wait("accepted", 5)
        assert alice.recv(timeout=5).text == "to myself"
