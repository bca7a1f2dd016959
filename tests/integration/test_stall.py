"""Stalls, not crashes: SIGSTOP a process for longer than the liveness timeouts, SIGCONT it.
Sessions expire and are resumed; nothing is lost, nothing is handed over twice."""

from __future__ import annotations

import ast
import signal
import subprocess
import time
from pathlib import Path

from ..conftest import Procs, read_lines, wait_for
from .test_delivery import check_exactly_once_in_order

STALL = 4.0  # > 3 heartbeats of 1 s: both sides give the other up


def stall(proc_pid: int) -> None:
    import os

    os.kill(proc_pid, signal.SIGSTOP)
    time.sleep(STALL)  # the fault itself: a process frozen this long, not a synchronisation
    os.kill(proc_pid, signal.SIGCONT)


def router_stats(router: subprocess.Popen[str]) -> dict[str, int]:
    """Stop the router (SIGTERM) and read the counters it logs on its way out."""
    router.send_signal(signal.SIGTERM)
    _, err = router.communicate(timeout=20)
    line = next(x for x in err.splitlines() if "zs router stopped: " in x)
    stats: dict[str, int] = ast.literal_eval(line.split("zs router stopped: ", 1)[1])
    return stats


def test_a_stalled_recipient_resumes_without_loss_or_repeats(procs: Procs, tmp_path: Path) -> None:
    router = procs.router()
    out = tmp_path / "bob.out"
    total = 40_000
    bob = procs.peer("recv", "bob", procs.url, str(total), str(out))
    sender = procs.peer("send", "alice", procs.url, str(total), "bob")
    wait_for(lambda: len(read_lines(out)) > 1000, 60, "traffic")
    stall(bob.pid)  # the router expires bob's session and takes its deliveries back
    assert sender.communicate(timeout=120)[0].strip() == "DONE"
    assert bob.communicate(timeout=120)[0].strip() == "DONE"
    check_exactly_once_in_order(read_lines(out), {"alice": total})
    assert router_stats(router)["redelivered"] > 0  # the stall did cost bob its session


def test_a_stalled_router_resumes_and_every_message_arrives_once(
    procs: Procs, tmp_path: Path
) -> None:
    router = procs.router()
    out = tmp_path / "bob.out"
    total = 40_000
    bob = procs.peer("recv", "bob", procs.url, str(total), str(out))
    sender = procs.peer("send", "alice", procs.url, str(total), "bob")
    wait_for(lambda: len(read_lines(out)) > 1000, 60, "traffic")
    stall(router.pid)  # both peers give the router up, say Hello again, resend
    assert sender.communicate(timeout=120)[0].strip() == "DONE"
    assert bob.communicate(timeout=120)[0].strip() == "DONE"
    check_exactly_once_in_order(read_lines(out), {"alice": total})
    assert router.poll() is None  # it kept serving
    assert router_stats(router)["duplicates"] > 0  # alice resent while it was frozen
