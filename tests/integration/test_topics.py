"""Topics against a real router process: publishing from Client and AsyncClient, following
with Observer and AsyncObserver, a late joiner, a stalled observer, and how soon a final
value arrives."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path

import pytest

from zmqswarm import AsyncClient, AsyncObserver, Client, Observer
from zmqswarm.protocol import TopicView, WatchedState

from ..helpers import Procs
from .publisher import final_values

PUBLISHER = str(Path(__file__).parent / "publisher.py")


def payloads(view: TopicView) -> dict[str, bytes]:
    return {topic: record.payload for topic, record in view.values.items()}


def follow(
    updates: Generator[WatchedState, None, None],
    ok: Callable[[], bool],
    timeout: float,
    what: str,
) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        next(updates)


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    """A process's stdout lines, read in a thread: a get() can have a deadline."""
    lines: queue.Queue[str] = queue.Queue()
    out = proc.stdout
    assert out is not None

    def read() -> None:
        for line in out:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=read, daemon=True).start()
    return lines


def router_values(url: str) -> dict[str, bytes]:
    observer = Observer(url, state=False, topics="")
    observer.snapshot()
    return payloads(observer.topics)


def test_clients_publish_and_both_observers_follow(procs: Procs) -> None:
    procs.router()
    observer = Observer(procs.url, topics="")
    updates = observer.watch(tick=0.05)
    try:
        next(updates)
        with Client("alice", router=procs.url) as alice:
            alice.publish("alice", b"compiling")
            alice.publish("build/1", b"10%", ttl=0.3)
            follow(updates, lambda: "build/1" in observer.topics.values, 10, "alice's topics")
            record = observer.topics.values["alice"]
            assert record.payload == b"compiling" and record.publisher == "alice"
            assert set(observer.topics.take_changes()) >= {"alice", "build/1"}
            with pytest.raises(ValueError, match="invalid topic"):
                alice.publish("not a topic", b"")
            # The ttl runs out: the topic leaves the router and every observer.
            follow(updates, lambda: "build/1" not in observer.topics.values, 10, "the ttl")
            assert router_values(procs.url) == {"alice": b"compiling"}

        async def from_asyncio() -> dict[str, bytes]:
            async with AsyncClient("bob", router=procs.url) as bob:
                await bob.wait_ready()
                for i in range(100):  # one loop iteration: one frame, the last value kept
                    bob.publish("bob", b"%d" % i)
                watcher = AsyncObserver(procs.url, state=False, topics="bob")
                async for _ in watcher.watch(tick=0.05):
                    if payloads(watcher.topics) == {"bob": b"99"}:
                        break
                return payloads(watcher.topics)

        assert asyncio.run(asyncio.wait_for(from_asyncio(), 20)) == {"bob": b"99"}
        follow(updates, lambda: "bob" in observer.topics.values, 10, "bob's topic")
        # Counted as Updates come, every 250 ms at most.
        follow(updates, lambda: observer.state.stats.get("published", 0) >= 3, 10, "counters")
        assert observer.state.stats["topic_values"] >= 3
        assert observer.bad_updates == 0 and observer.topics.resyncs == 0
    finally:
        updates.close()


def test_a_late_observer_ends_with_exactly_the_routers_last_values(procs: Procs) -> None:
    """It joins while 50,000 updates to 1,000 topics go by (10,000 a second) and ends with
    exactly the values the router holds, which are the last ones published."""
    count, topics = 50_000, 1_000
    procs.router()
    publisher = procs.spawn(
        PUBLISHER, "--router", procs.url, "--count", str(count), "--topics", str(topics),
        "--rate", "10000", "--every", "5000",
    )  # fmt: skip
    lines = lines_of(publisher)
    assert lines.get(timeout=30) == "progress 5000"
    observer = Observer(procs.url, topics="")
    updates = observer.watch(tick=0.05)
    try:
        first = next(updates)
        joined_at = first.stats["published"]
        held = len(observer.topics.values)
        assert 0 < joined_at < count and 0 < held
        want = final_values(count, topics)
        follow(updates, lambda: payloads(observer.topics) == want, 30, "the last values")
        assert publisher.wait(30) == 0
        assert router_values(procs.url) == want
        follow(updates, lambda: observer.state.stats["published"] == count, 10, "all counted")
        found = f"joined after {joined_at} updates holding {held} topics"
        print(f"{found}; resyncs {observer.topics.resyncs}")  # noqa: T201 (the figures)
    finally:
        updates.close()


OBSERVER = """
import json, sys, time
from zmqswarm import Observer
observer = Observer(sys.argv[1], state=False, topics="")
shown = 0.0
for _ in observer.watch(tick=0.05):
    if observer.topics.take_changes() or time.monotonic() - shown > 0.5:
        shown = time.monotonic()
        values = {t: r.payload.decode() for t, r in observer.topics.values.items()}
        print(json.dumps({"resyncs": observer.topics.resyncs, "values": values}), flush=True)
"""


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_an_observer_stopped_for_10_s_sees_its_gap_and_resyncs(procs: Procs) -> None:
    count, topics, rate = 80_000, 100, 5_000  # 16 s of updates
    procs.router()
    watcher = procs.spawn("-c", OBSERVER, procs.url)
    seen = lines_of(watcher)
    seen.get(timeout=30)  # it follows
    publisher = procs.spawn(
        PUBLISHER, "--router", procs.url, "--count", str(count), "--topics", str(topics),
        "--rate", str(rate), "--every", "5000",
    )  # fmt: skip
    progress = lines_of(publisher)
    assert progress.get(timeout=30) == "progress 5000"
    watcher.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    time.sleep(10)  # the stall under test, not a synchronisation
    watcher.send_signal(signal.SIGCONT)
    assert time.monotonic() - stopped >= 10
    want = {topic: value.decode() for topic, value in final_values(count, topics).items()}
    deadline = time.monotonic() + 40
    last: dict[str, object] = {}
    while last.get("values") != want:
        left = deadline - time.monotonic()
        assert left > 0, f"the observer never caught up: {str(last)[:300]}"
        try:
            last = json.loads(seen.get(timeout=left))
        except queue.Empty:
            break
    assert last.get("values") == want
    resyncs = last["resyncs"]
    assert isinstance(resyncs, int) and resyncs >= 1
    assert publisher.wait(30) == 0
    print(f"resyncs {resyncs}")  # noqa: T201 (the figure)


def test_final_values_arrive_within_100_ms_of_the_last_publish(procs: Procs) -> None:
    """One publisher, 10,000 updates a second to 10 topics for 2 s."""
    count, topics = 20_000, 10
    procs.router()
    observer = Observer(procs.url, state=False, topics="")
    updates = observer.watch(tick=0.01)
    next(updates)
    want = final_values(count, topics)
    publisher = procs.spawn(
        PUBLISHER, "--router", procs.url, "--count", str(count), "--topics", str(topics),
        "--rate", "10000",
    )  # fmt: skip
    try:
        arrived: dict[str, int] = {}
        deadline = time.monotonic() + 30
        while len(arrived) < topics:
            assert time.monotonic() < deadline, f"final values seen: {sorted(arrived)}"
            next(updates)
            now = time.monotonic_ns()
            for topic in observer.topics.take_changes():
                record = observer.topics.values.get(topic)
                if record is not None and record.payload == want[topic]:
                    arrived.setdefault(topic, now)
        out, _ = publisher.communicate(timeout=30)
        last_publish = int(out.split()[-1])
        lag_ms = (max(arrived.values()) - last_publish) / 1e6
        print(f"last final value {lag_ms:.1f} ms after the last publish")  # noqa: T201 (the figure)
        assert lag_ms < 100
    finally:
        updates.close()


ZS = [sys.executable, "-m", "zmqswarm.cli"]
ENV = {k: v for k, v in os.environ.items() if k not in ("ZS_ROUTER", "ZS_NAME")}


def zs(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*ZS, *args], input=stdin, capture_output=True, timeout=30, env=ENV)


def test_zs_pub_and_zs_sub_as_a_script_uses_them(procs: Procs) -> None:
    procs.router()
    url = procs.url
    assert zs("pub", "-r", url, "--from", "runner", "build/1", "compiling").returncode == 0
    follower = procs.spawn("-m", "zmqswarm.cli", "sub", "build/", "--json", "-r", url, env=ENV)
    lines = lines_of(follower)
    first = json.loads(lines.get(timeout=15))  # what the router holds, at once
    assert first == {
        "topic": "build/1", "seq": 1, "publisher": "runner", "payload": "compiling",
        "encoding": "utf-8",
    }  # fmt: skip
    assert zs("pub", "-r", url, "other", "not under build/").returncode == 0
    done = zs("pub", "-r", url, "-f", "runner", "--ttl", "0.5", "build/2", "-", stdin=b"\xff\x00")
    assert done.returncode == 0 and done.stdout == b"", done.stderr
    second = json.loads(lines.get(timeout=15))
    assert second["topic"] == "build/2" and second["encoding"] == "base64"
    assert second["payload"] == "/wA=" and second["seq"] == 3
    assert json.loads(lines.get(timeout=15)) == {"topic": "build/2", "gone": True}  # its ttl
    text = zs("sub", "-r", url, "--once")
    assert text.returncode == 0 and text.stdout == b"build/1 compiling\nother not under build/\n"


def test_zs_pub_and_zs_sub_errors_are_one_line_with_their_exit_codes(tmp_path: Path) -> None:
    nobody = f"ipc://{tmp_path}/nobody"
    cases = [
        (["pub", "-r", nobody, "no spaces", "x"], 2, "invalid topic 'no spaces'"),
        (["pub", "-r", nobody, "--from", "-bad", "t", "x"], 2, "invalid publisher name"),
        (["sub", "-r", nobody, "a b", "--once"], 2, "invalid topic prefix 'a b'"),
        (["pub", "-r", nobody, "--timeout", "0.5", "t", "x"], 3, "did not answer within 0.5 s"),
        (["sub", "-r", nobody, "--timeout", "0.5"], 3, "did not answer within 0.5 s"),
        (["pub", "-r", nobody, "t", "-"], 4, "over the 65536-byte limit"),
    ]
    for args, code, said in cases:
        done = zs(*args, stdin=bytes(65537))
        err = done.stderr.decode()
        assert done.returncode == code, (args, err)
        assert err.count("\n") == 1 and said in err, (args, err)


def test_zs_peers_and_zs_monitor_say_what_every_agent_is_doing(procs: Procs) -> None:
    procs.router()
    url = procs.url
    with Client("alice", router=url) as alice:
        alice.set_state("live %3")  # what `zs agent` reports about its pane
        alice.publish("alice", b"reviewing PR 12")  # what it says it is doing
        alice.publish("build/7", b"73%")
        alice.wait_ready()

        def listed() -> str:
            return zs("peers", "-r", url).stdout.decode()

        deadline = time.monotonic() + 10
        while "reviewing PR 12" not in listed():
            assert time.monotonic() < deadline, listed()
        row = next(line for line in listed().splitlines() if line.startswith("alice"))
        assert "live %3" in row and row.endswith("reviewing PR 12")
        as_json = json.loads(zs("peers", "-r", url, "--json").stdout)
        assert as_json["state"] == "live %3" and as_json["doing"] == "reviewing PR 12"
        shown = zs("monitor", "--once", "-r", url, "--topics", "build/").stdout.decode()
        assert "topics build/* · 1 · by name" in shown and "73%" in shown
        assert "reviewing" in shown, shown  # alice's row
        once = json.loads(zs("monitor", "--once", "--json", "-r", url).stdout)
        assert [t["topic"] for t in once["topics"]] == ["alice", "build/7"]
