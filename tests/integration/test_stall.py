"""Stalls, not crashes: SIGSTOP a process for longer than the liveness timeouts, SIGCONT it.
Sessions expire and are resumed; nothing is lost, nothing is handed over twice."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from ..helpers import Procs, check_exactly_once_in_order, read_lines, router_stats, wait_for

STALL = 4.0  # > 3 heartbeats of 1 s: both sides give the other up


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
    # alice gave the router up and said Hello again, then resent what it had not receipted
    # (some of it accepted before the stall: counted as duplicates, or not, by timing).
    assert stats["resumed"] > 0
