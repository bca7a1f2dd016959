"""Stalls, not crashes: SIGSTOP a process for longer than the liveness timeout, SIGCONT it.
Nothing is lost, nothing is handed over twice, whether or not a session had to be resumed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from ..helpers import Procs, check_exactly_once_in_order, read_lines, router_stats, wait_for

STALL = 4.0  # seconds: five times the ZMTP heartbeat timeout


def stall(proc_pid: int) -> None:
    import os

    os.kill(proc_pid, signal.SIGSTOP)
    time.sleep(STALL)  # the fault itself: a process frozen this long, not a synchronisation
    os.kill(proc_pid, signal.SIGCONT)


TOTAL = 40_000


def stall_mid_stream(procs: Procs, tmp_path: Path, frozen: str) -> dict[str, int]:
    """alice streams TOTAL messages to bob through a router; once traffic flows, ``frozen``
    (bob or the router) is stalled; everything must still arrive once, in order. Returns the
    router's counters (it must have kept serving)."""
    router = procs.router()
    out = tmp_path / "bob.out"
    bob = procs.peer("recv", "bob", procs.url, str(TOTAL), str(out))
    # Paced (4 s of sending): at full speed alice could have every receipt before the stall,
    # and a stalled router would then have nothing left to be resent (seen once in CI).
    sender = procs.peer("send", "alice", procs.url, str(TOTAL), "bob", str(TOTAL / 4))
    wait_for(lambda: len(read_lines(out)) > 1000, 60, "traffic")
    stall((bob if frozen == "bob" else router).pid)
    assert sender.communicate(timeout=120)[0].strip() == "DONE"
    assert bob.communicate(timeout=120)[0].strip() == "DONE"
    check_exactly_once_in_order(read_lines(out), {"alice": TOTAL})
    assert router.poll() is None
    return router_stats(router)


def test_a_stalled_recipient_resumes_without_loss_or_repeats(procs: Procs, tmp_path: Path) -> None:
    stats = stall_mid_stream(procs, tmp_path, "bob")
    assert stats["redelivered"] > 0  # the router expired bob's session, took deliveries back


def test_a_stalled_router_resumes_and_every_message_arrives_once(
    procs: Procs, tmp_path: Path
) -> None:
    stats = stall_mid_stream(procs, tmp_path, "router")
    # alice either timed the router out and said Hello again (resumed), or kept her session:
    # with her send buffer full no PING can leave, and libzmq starts a PING's timeout only
    # once it is written. Either way the router took every message, once.
    assert stats["accepted"] == TOTAL, stats
