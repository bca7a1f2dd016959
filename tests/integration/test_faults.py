"""Fault tests with real processes: a paused holder, a dead recipient, a stuck
network. Every message carries its sender and seq; every recipient logs what it handed to
its application, and when (peer.py's ``take`` role), so the checks count, not guess.

A busy caller keeping its session and a stopped client shown offline within 2 s are in
test_client.py."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from zmqswarm.observe import list_peers, snapshot

from ..helpers import (
    PEER,
    Procs,
    check_exactly_once_in_order,
    handed,
    last_line,
    poll_until,
    read_lines,
    router_stats,
    wait_for,
)
from .netns import ROUTER_IP, Net, drop_router_to_peers


def proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 (state) on: the command name may hold spaces."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (libzmq's I/O thread too)."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def offline(url: str, name: str) -> bool:
    return not any(p.online for p in list_peers(url) if p.name == name)


# -- 1. a paused holder hands out nothing its successor handled ---------------------------

PAUSE_TOTAL = 6000
PAUSE_RATE = 2000  # a second of sending after bob#1 freezes
PAUSE = 5.0  # bob#1 frozen this long: six times the router's liveness timeout (0.8 s)
STOP_AFTER = 300  # bob#1 has handed this many when it freezes, with a backlog taken


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "successor",
    [
        pytest.param("stays", id="stays-1"),
        pytest.param("stays", id="stays-2"),
        pytest.param("stays", id="stays-3"),
        pytest.param("leaves", id="leaves-1"),
        pytest.param("leaves", id="leaves-2"),
    ],
)
def test_a_paused_holder_hands_out_nothing_its_successor_handled(
    procs: Procs, tmp_path: Path, successor: str
) -> None:
    """bob#1, a slow application with received-but-not-handed mail, freezes for 5 s; bob#2
    takes the name and the mail meanwhile. On SIGCONT bob#1 hands over nothing bob#2 handled:
    if bob#2 still holds the name, nothing at all (NameTakenError); if it left, only what it
    left behind. Nothing is lost."""
    router = procs.router()
    one, two, done = tmp_path / "bob1.out", tmp_path / "bob2.out", tmp_path / "bob2.done"
    last = f"alice:{PAUSE_TOTAL - 1}"
    bob1 = procs.peer(
        "take", "bob", procs.url, str(one), "--delay", "2", "--stop-after", str(STOP_AFTER),
        "--last", last,
    )  # fmt: skip
    alice = procs.peer("send", "alice", procs.url, str(PAUSE_TOTAL), "bob", str(PAUSE_RATE))
    assert bob1.stdout is not None
    line = bob1.stdout.readline().strip()
    assert line == f"STOPPING {STOP_AFTER}", bob1.stderr.read() if bob1.stderr else line
    wait_for(lambda: proc_stat(bob1.pid)[0] == "T", 5, "bob#1 stopped")
    stopped = time.monotonic()
    before = len(handed(one))
    wait_for(lambda: offline(procs.url, "bob"), 5, "bob#1 shown offline")
    if successor == "stays":
        bob2 = procs.peer("take", "bob", procs.url, str(two), "--until", str(done))
        wait_for(lambda: any(h.seq == PAUSE_TOTAL - 1 for h in handed(two)), 20, "bob#2 done")
    else:
        bob2 = procs.peer("take", "bob", procs.url, str(two), "--leave-after", "1000")
        assert last_line(bob2) == "LEFT 1000"
        wait_for(lambda: offline(procs.url, "bob"), 5, "bob#2 gone")
    time.sleep(max(0.0, stopped + PAUSE - time.monotonic()))  # the fault: frozen for PAUSE s
    os.kill(bob1.pid, signal.SIGCONT)
    outcome = last_line(bob1)
    if successor == "stays":
        assert outcome.startswith("NAME_TAKEN"), outcome
        done.touch()
        assert last_line(bob2).startswith("DONE")
    else:
        assert outcome.startswith("DONE"), outcome
    assert last_line(alice) == "DONE"

    h1, h2 = handed(one), handed(two)
    took2 = {h.seq for h in h2}
    after = h1[before:]  # handed by bob#1 after its SIGCONT
    repeated = [h.seq for h in after if h.seq in took2]
    # Handed by bob#1 just before it froze, its ack not yet out: bob#2 has them again, and
    # the router says so (attempt 2). The application had them: at-least-once, not a lease.
    overlap = [h.seq for h in h1[:before] if h.seq in took2]
    # Delivered to bob#1, never handed over (its local backlog), then redelivered to bob#2.
    seen1 = {h.seq for h in h1}
    backlog = [h.seq for h in h2 if h.attempt > 1 and h.seq not in seen1]
    print(  # noqa: T201 - the report's numbers (pytest -s)
        f"\n{successor}: bob#1 handed {before} before, {len(after)} after SIGCONT;"
        f" bob#2 handed {len(h2)}; repeated after SIGCONT {len(repeated)};"
        f" overlap before the stop {len(overlap)}; backlog redelivered {len(backlog)}"
    )
    assert repeated == [], f"bob#1 handed out {len(repeated)} that bob#2 handled: {repeated}"
    if successor == "stays":
        assert after == []
    assert backlog, "bob#1 held no backlog when it froze: the fault missed its point"
    assert all(h.attempt > 1 for h in h2 if h.seq in set(overlap))
    assert seen1 | took2 == set(range(PAUSE_TOTAL)), "lost"
    for log in (h1, h2):
        seqs = [h.seq for h in log]
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    stats = router_stats(router)
    assert stats["disconnected"] >= 1  # bob#1's session ended for its connection


# -- 2. no spin on a dead recipient -------------------------------------------------------

DEAD_TOTAL = 8000
DEAD_RATE = 1000  # alice still sends throughout the window after the kill
WINDOW = 3.0  # seconds over which the router's CPU is measured


@pytest.mark.solo
@pytest.mark.timeout(60)
def test_a_dead_recipient_costs_the_router_no_spin_and_no_phantom_deliveries(
    procs: Procs, tmp_path: Path
) -> None:
    router = procs.router()
    one, two = tmp_path / "bob1.out", tmp_path / "bob2.out"
    bob1 = procs.peer("take", "bob", procs.url, str(one), "--delay", "2")
    alice = procs.peer("send", "alice", procs.url, str(DEAD_TOTAL), "bob", str(DEAD_RATE))
    wait_for(lambda: len(handed(one)) >= 500, 20, "traffic to bob#1")
    c0, t0 = cpu_seconds(router.pid), time.monotonic()
    time.sleep(WINDOW / 2)  # a measurement window (the router serving a live bob), not a sync
    alive = (cpu_seconds(router.pid) - c0) / (time.monotonic() - t0)
    bob1.send_signal(signal.SIGKILL)
    bob1.wait(10)
    c0, t0 = cpu_seconds(router.pid), time.monotonic()
    time.sleep(WINDOW)  # the measurement window after the kill, not a sync
    dead = (cpu_seconds(router.pid) - c0) / (time.monotonic() - t0)
    assert alice.poll() is None, "alice stopped sending before the window ended"
    bob2 = procs.peer("take", "bob", procs.url, str(two), "--last", f"alice:{DEAD_TOTAL - 1}")
    assert last_line(alice, 60) == "DONE"
    assert last_line(bob2, 60).startswith("DONE")
    rows: list[object] = []

    def settled() -> bool:
        rows[:] = [p for p in list_peers(procs.url) if p.name == "bob"]
        return not rows

    # bob#2 left with a Bye after its last Ack: no session, nothing queued or in flight.
    assert poll_until(settled, 5), f"bob still listed 5 s after bob#2 left: {rows}"
    stats = router_stats(router)
    h1, h2 = handed(one), handed(two)
    redelivered = sum(h.attempt - 1 for h in h2)  # each attempt past the first: a delivery
    print(  # noqa: T201 - the report's numbers (pytest -s)
        f"\nrouter CPU {alive:.1%} serving bob#1, {dead:.1%} in {WINDOW} s after its SIGKILL;"
        f" bob#1 handed {len(h1)}, bob#2 {len(h2)} ({redelivered} redelivered); {stats}"
    )
    assert dead < 0.30, f"router at {dead:.0%} CPU after the recipient died"
    assert redelivered > 0, "bob#1 had nothing in flight when killed: the fault missed"
    assert stats["acked"] == DEAD_TOTAL
    assert stats["redelivered"] == redelivered
    # Every message was delivered once, plus once more for each bob#1 took and never acked.
    assert stats["delivered"] == DEAD_TOTAL + redelivered
    assert {h.seq for h in h1} | {h.seq for h in h2} == set(range(DEAD_TOTAL))


# -- 2b. an outage costs one Hello per client ---------------------------------------------


@pytest.mark.timeout(60)
def test_a_client_cut_off_for_seconds_says_hello_once_when_it_is_back(
    procs: Procs, tmp_path: Path
) -> None:
    router = procs.router()
    out = tmp_path / "bob.out"
    bob = procs.peer("take", "bob", procs.url, str(out), "--last", "alice:2999")
    alice = procs.peer("send", "alice", procs.url, "3000", "bob", "500")
    wait_for(lambda: len(handed(out)) >= 200, 20, "traffic")
    os.kill(router.pid, signal.SIGSTOP)
    time.sleep(4.0)  # the fault: the router frozen (its peers' links time out), not a sync
    os.kill(router.pid, signal.SIGCONT)
    assert last_line(alice) == "DONE"
    assert last_line(bob).startswith("DONE")
    check_exactly_once_in_order(read_lines(out), {"alice": 3000})
    stats = router_stats(router)
    print(f"\nafter a 4 s router stall: {stats}")  # noqa: T201 - the report's numbers
    assert stats["resumed"] == 1  # Hellos from alice's incarnation after its first: one


# -- 3. a stuck network heals within 2 s --------------------------------------------------

NET_TOTAL = 11_000
NET_RATE = 500  # 22 s of sending: before, through and after the drop
DROP = 15.0


@pytest.mark.timeout(90, method="signal")  # a timeout still removes the namespaces
def test_a_one_way_drop_of_15_s_heals_within_2_s_without_loss_or_repeats(
    net: Net, procs: Procs, tmp_path: Path
) -> None:
    tcp = f"tcp://{ROUTER_IP}:5555"
    admin = procs.url  # ipc: a path-named socket, reachable from outside the namespaces
    # --insecure: the tcp address is off loopback, inside namespaces only this test uses.
    router = procs.spawn(
        "-m", "zmqswarm.cli", "router", "--bind", tcp, "--bind", admin, "--insecure",
        netns=net.router_ns,
    )  # fmt: skip
    wait_for(Path(admin[len("ipc://") :]).exists, 10, "the router's socket")
    out = tmp_path / "bob.out"
    bob = procs.spawn(
        PEER, "take", "bob", tcp, str(out), "--last", f"alice:{NET_TOTAL - 1}", netns=net.peer_ns
    )
    alice = procs.spawn(
        PEER, "send", "alice", tcp, str(NET_TOTAL), "bob", str(NET_RATE), netns=net.peer_ns
    )
    wait_for(lambda: len(handed(out)) >= 1000, 20, "traffic before the fault")

    def accepted() -> int:
        return snapshot(admin).stats["accepted"]

    drop_router_to_peers(net, True)
    dropped = time.monotonic()
    time.sleep(DROP)  # the fault itself: 15 s of one-way loss, not a synchronisation
    frozen = accepted()  # the sender's connection gave up long ago: nothing new arrives
    healed = time.monotonic()  # just before the rule goes: times after it are upper bounds
    drop_router_to_peers(net, False)
    wait_for(lambda: accepted() > frozen, 10, "the router accepting again")
    sender_back = time.monotonic() - healed  # an upper bound: when the poll saw it
    wait_for(lambda: any(h.at > healed for h in handed(out)), 10, "deliveries after the drop")
    log = handed(out)
    recipient_back = min(h.at for h in log if h.at > healed) - healed
    # Handed over in the drop, after what was on its way when it began: nothing can be.
    during = [
        (h.seq, h.attempt, round(h.at - dropped, 3)) for h in log if dropped + 1 < h.at < healed
    ]
    assert last_line(alice, 60) == "DONE"
    assert last_line(bob, 60).startswith("DONE")
    stats = router_stats(router)
    print(  # noqa: T201 - the report's numbers (pytest -s)
        f"\n{net.tool}: recipient resumed {recipient_back:.3f} s after the drop ended, sender"
        f" {sender_back:.3f} s; {len(during)} handed over during it; {stats}"
    )
    check_exactly_once_in_order(read_lines(out), {"alice": NET_TOTAL})
    assert not during, f"(seq, attempt, s into the drop): {during[:3]}...{during[-3:]}"
    assert recipient_back < 2.0, f"deliveries resumed {recipient_back:.2f} s after the heal"
    assert sender_back < 2.0, f"the sender resumed {sender_back:.2f} s after the heal"
