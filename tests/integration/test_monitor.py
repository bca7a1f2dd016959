"""Observers against a real router process: the Snapshot, the Updates after it, resyncing
after a router restart, and `zs monitor` as a user runs it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path

from zmqswarm import Client
from zmqswarm.observer import Observer
from zmqswarm.protocol import WatchedState

from ..conftest import Procs

ZS = [sys.executable, "-m", "zmqswarm.cli"]


def watch_until(
    updates: Generator[WatchedState, None, None],
    ok: Callable[[WatchedState], bool],
    timeout: float,
    what: str,
) -> WatchedState:
    """Follow the observer until ``ok`` holds (it yields at least every tick)."""
    deadline = time.monotonic() + timeout
    for state in updates:
        if ok(state):
            return state
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_an_observer_sees_mail_wait_then_drain(procs: Procs) -> None:
    procs.router()
    observer = Observer(procs.url)
    updates = observer.watch(tick=0.1)
    try:
        first = next(updates)
        assert first.synced and "bob" not in first.peers
        with Client("alice", router=procs.url) as alice:
            for i in range(5):
                alice.send("bob", b"%d" % i).wait("accepted")
        state = watch_until(
            updates, lambda s: "bob" in s.peers and s.peers["bob"].queued == 5, 10, "5 queued"
        )
        assert not state.peers["bob"].online and state.stats["accepted"] == 5
        with Client("bob", router=procs.url) as bob:
            assert [bob.recv(timeout=10).payload for _ in range(5)] == [
                b"0",
                b"1",
                b"2",
                b"3",
                b"4",
            ]
            state = watch_until(
                updates,
                lambda s: "bob" in s.peers and s.peers["bob"].online and s.stats["acked"] == 5,
                10,
                "bob online with all 5 acked",
            )
            assert state.peers["bob"].queued == 0 and state.peers["bob"].inflight == 0
        watch_until(updates, lambda s: "bob" not in s.peers, 10, "bob gone once he left")
        assert observer.bad_updates == 0 and state.resyncs == 0
    finally:
        updates.close()


def test_an_observer_resyncs_with_a_restarted_router(procs: Procs) -> None:
    router = procs.router()
    observer = Observer(procs.url, timeout=2.0)
    updates = observer.watch(tick=0.1)
    try:
        epoch = next(updates).router_epoch
        router.send_signal(signal.SIGTERM)
        assert router.wait(10) == 0
        watch_until(updates, lambda s: observer.silent, 10, "the router reported silent")
        procs.router()
        state = watch_until(
            updates,
            lambda s: s.synced and s.router_epoch != epoch,
            15,
            "a Snapshot from the new router",
        )
        assert state.resyncs >= 1 and not observer.silent
        with Client("alice", router=procs.url) as alice:
            alice.send("carol", b"hi").wait("accepted")
        watch_until(updates, lambda s: "carol" in s.peers, 10, "mail for carol, on new Updates")
    finally:
        updates.close()


def test_zs_monitor_once_prints_the_table(procs: Procs) -> None:
    procs.router()
    with Client("alice", router=procs.url) as alice:
        alice.send("bob", b"hi").wait("accepted")
    result = subprocess.run(
        [*ZS, "monitor", "--once", "--router", procs.url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "bob" in result.stdout and "offline" in result.stdout
    assert "accepted 1" in result.stdout


def test_zs_monitor_json_follows_changes_as_json_lines(procs: Procs) -> None:
    procs.router()
    once = subprocess.run(
        [*ZS, "monitor", "--once", "--json", "--router", procs.url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert once.returncode == 0, once.stderr
    first = json.loads(once.stdout)
    assert first["peers"] == [] and first["stats"]["accepted"] == 0 and not first["silent"]
    follow = subprocess.Popen(
        [*ZS, "monitor", "--json", "--router", procs.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.children.append(follow)
    assert follow.stdout is not None
    assert json.loads(follow.stdout.readline())["router_epoch"] == first["router_epoch"]
    with Client("alice", router=procs.url) as alice:
        alice.send("dave", b"hi").wait("accepted")
    for line in follow.stdout:  # one object per change; the reap kills it
        state = json.loads(line)
        if state["peers"]:
            assert state["peers"][0]["name"] == "dave" and state["peers"][0]["queued"] == 1
            assert state["stats"]["accepted"] == 1
            break


def test_zs_monitor_without_a_router_is_one_line_and_exit_3(tmp_path: Path) -> None:
    result = subprocess.run(
        [*ZS, "monitor", "--once", "--router", f"ipc://{tmp_path}/nobody", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "did not answer" in result.stderr
