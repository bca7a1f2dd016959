"""Observers against a real router process: the Snapshot, the Updates after it, resyncing
after a router restart, and `zs monitor` as a user runs it."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path

import zmq

from zmqswarm import Client
from zmqswarm.observe.observer import Observer
from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    Heartbeat,
    Hello,
    Observe,
    PeerItem,
    Snapshot,
    Update,
    WatchedState,
    Welcome,
    decode,
    encode,
)

from ..helpers import Procs

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
            for i in range(5):  # notify: bob acks each as recv() returns it, idle or not
                alice.send("bob", b"%d" % i, notify=True).wait("accepted")
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
            # The Update that counted the last ack timed it, acceptance to ack.
            assert state.latency["n"] >= 1 and state.latency["p50"] > 0
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
        waits = []
        for _ in range(3):  # while it is away the view keeps drawing: each retry is brief
            start = time.monotonic()
            next(updates)
            waits.append(time.monotonic() - start)
        assert max(waits) < 1.5, waits  # not the 2 s Snapshot timeout per retry
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


def test_an_observer_counts_garbage_and_resyncs_after_a_gap(tmp_path: Path) -> None:
    """Against a stand-in router whose PUB the test writes: what does not decode as an Update
    is counted and skipped; a skipped number brings a new Snapshot."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    url, pub_url = f"ipc://{tmp_path}/fake", f"ipc://{tmp_path}/fake.pub"
    router = ctx.socket(zmq.ROUTER)
    router.bind(url)
    pub = ctx.socket(zmq.PUB)
    pub.bind(pub_url)
    asked = [0]  # Observe requests answered
    published = [0]  # the number the next Snapshot carries
    stop = threading.Event()

    def serve() -> None:  # owns ``router`` from here
        while not stop.is_set():
            if not router.poll(20):
                continue
            identity, header = router.recv_multipart()
            frame = decode(header)
            if isinstance(frame, Hello):
                welcome = Welcome(PROTOCOL_VERSION, 77, 1, 0, 1000, 1 << 20, frame.attempt)
                router.send_multipart([identity, encode(welcome)])
            elif isinstance(frame, Observe):
                asked[0] += 1
                snap = Snapshot(77, published[0], 0, [pub_url], [], {"accepted": 0}, 1000)
                router.send_multipart([identity, encode(snap)])

    server = threading.Thread(target=serve)
    server.start()
    observer = Observer(url, timeout=5)
    updates = observer.watch(tick=0.02)

    def publish_until(ok: Callable[[], bool], message: bytes, what: str) -> None:
        deadline = time.monotonic() + 10
        while not ok():  # resent until seen: a new SUB misses the first messages
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            pub.send(message)
            next(updates)

    try:
        state = next(updates)
        assert state.synced and asked[0] == 2  # once for the endpoints, once after subscribing
        publish_until(lambda: observer.bad_updates > 0, b"\xc1 not msgpack", "garbage counted")
        publish_until(lambda: observer.bad_updates > 1, encode(Heartbeat()), "a non-Update counted")
        erin = PeerItem("erin", True, 1, 0, 2, 0, "")
        one = encode(Update(77, 1, 10, [erin], [], {"accepted": 2}))
        publish_until(lambda: "erin" in state.peers, one, "Update 1 applied")
        assert state.stats == {"accepted": 2} and asked[0] == 2 and state.resyncs == 0
        published[0] = 3
        three = encode(Update(77, 3, 30, [], ["erin"], {"accepted": 2}))
        publish_until(lambda: asked[0] == 3, three, "a new Snapshot after Update 2 was lost")
        publish_until(lambda: state.synced and state.seq == 3, three, "resynced at 3")
        assert state.resyncs == 1 and state.peers == {}
    finally:
        updates.close()
        stop.set()
        server.join(5)
        router.close(0)
        pub.close(0)


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
    out = follow.stdout
    assert out is not None
    lines: queue.Queue[str] = queue.Queue()  # read in a thread: a get() can have a deadline

    def read() -> None:
        for line in out:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    assert json.loads(lines.get(timeout=15))["router_epoch"] == first["router_epoch"]
    with Client("alice", router=procs.url) as alice:
        alice.send("dave", b"hi").wait("accepted")
    deadline = time.monotonic() + 15
    while True:  # one object per change; the reap kills the process
        state = json.loads(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        if state["peers"]:
            assert state["peers"][0]["name"] == "dave" and state["peers"][0]["queued"] == 1
            assert state["stats"]["accepted"] == 1
            break


def test_bad_bind_and_publish_endpoints_are_one_line_and_exit_6(tmp_path: Path) -> None:
    for args in (
        ["--bind", "bogus://x"],
        ["--bind", f"ipc://{tmp_path}/r", "--publish", "bogus://y"],
    ):
        result = subprocess.run([*ZS, "router", *args], capture_output=True, text=True, timeout=30)
        assert result.returncode == 6, result.stderr
        assert result.stderr.count("\n") == 1 and "cannot bind bogus://" in result.stderr


def test_a_router_that_publishes_nothing_is_still_observed(procs: Procs) -> None:
    """--no-publish: Snapshots name no PUB endpoint, so the observer asks for one each tick."""
    procs.router("--no-publish")
    assert not Path(procs.url[len("ipc://") :] + ".pub").exists()
    observer = Observer(procs.url)
    updates = observer.watch(tick=0.05)
    try:
        assert next(updates).publish == []
        with Client("alice", router=procs.url) as alice:
            alice.send("frank", b"hi").wait("accepted")
        # Within 2 s: sooner than the 3 s of silence after which a subscriber asks again.
        state = watch_until(updates, lambda s: "frank" in s.peers, 2, "frank's mail, by polling")
        assert not observer.silent and state.resyncs == 0
    finally:
        updates.close()


def test_zs_monitor_without_a_router_is_one_line_and_exit_3(tmp_path: Path) -> None:
    result = subprocess.run(
        [*ZS, "monitor", "--once", "--router", f"ipc://{tmp_path}/nobody", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "did not answer" in result.stderr
