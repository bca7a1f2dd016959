"""`zs` as a user runs it: real processes against a real router."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..helpers import Procs, wait_for

ZS = [sys.executable, "-m", "zmqswarm.cli"]


def zs(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ZS, *args], input=stdin, capture_output=True, text=True, timeout=30)


def test_send_then_recv_round_trip(procs: Procs) -> None:
    procs.router()
    first = zs("send", "bob", "hello bob", "--router", procs.url)
    assert first.returncode == 0, first.stderr
    second = zs("send", "bob", "--router", procs.url, "--json", stdin="from stdin")
    assert json.loads(second.stdout)["state"] == "accepted"
    got = zs("recv", "bob", "--router", procs.url, "--count", "2", "--json", "--timeout", "10")
    lines = [json.loads(line) for line in got.stdout.splitlines()]
    assert [m["payload"] for m in lines] == ["hello bob", "from stdin"]
    assert lines[0]["ticket"] == first.stdout.strip()


def test_unreachable_router_is_one_line_and_exit_3_within_the_timeout(tmp_path: Path) -> None:
    start = time.monotonic()
    result = zs("send", "bob", "hi", "--router", f"ipc://{tmp_path}/nobody", "--timeout", "1")
    assert result.returncode == 3
    assert "did not answer within 1.0 s" in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line: no log line beside it
    assert time.monotonic() - start < 10  # 1 s wait + interpreter start, never 2 x timeout


def test_a_second_router_on_a_live_endpoint_exits_5(procs: Procs) -> None:
    procs.router()
    result = zs("router", "--bind", procs.url)
    assert result.returncode == 5
    assert "already serving" in result.stderr


def _cpus_allowed(pid: int) -> set[str]:
    """Cpus_allowed_list of every thread of ``pid``."""
    lists = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith("Cpus_allowed_list:"):
                lists.add(line.split()[1])
    return lists


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="sched_setaffinity is Linux's")
def test_zs_router_pins_itself_and_its_io_thread_from_the_config(procs: Procs) -> None:
    import os

    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("one CPU: a pinned thread looks like any other")
    cpu = max(allowed)
    config = procs.tmp / "router.toml"
    config.write_text(f"[router]\ncpus = [{cpu}]\n")
    router = procs.router("--config", str(config))
    threads = len(list(Path(f"/proc/{router.pid}/task").iterdir()))
    assert threads >= 2  # the loop and libzmq's I/O thread, which must be pinned too
    assert _cpus_allowed(router.pid) == {str(cpu)}
    assert zs("send", "bob", "hi", "--router", procs.url).returncode == 0  # and it serves


def test_zs_router_refuses_a_cpu_it_may_not_use(tmp_path: Path) -> None:
    result = zs("router", "--bind", f"ipc://{tmp_path}/r", "--cpu", "100000")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("zs: cannot pin to CPUs [100000]: this process may use")
    assert not (tmp_path / "r").exists()  # refused before binding anything


def test_a_crashed_routers_endpoint_is_taken_over(procs: Procs) -> None:
    first = procs.router()
    first.kill()  # SIGKILL: lock released by the kernel, socket file left behind
    first.wait(10)
    procs.router()
    assert zs("send", "bob", "hi", "--router", procs.url).returncode == 0


def test_zs_send_may_use_a_live_peer_s_name(procs: Procs) -> None:
    """`zs send --from bob` while bob is connected (an agent replying from its own pane):
    send-only, so not refused as NAME_TAKEN, and alice sees it came from bob."""
    from zmqswarm import Client

    procs.router()
    with Client("bob", router=procs.url), Client("alice", router=procs.url) as alice:
        sent = zs("send", "alice", "done", "--from", "bob", "--router", procs.url)
        assert sent.returncode == 0, sent.stderr
        msg = alice.recv(timeout=10)
        assert (msg.sender, msg.text) == ("bob", "done")


def test_zs_dead_lists_and_drops_what_the_router_gave_up_on(procs: Procs) -> None:
    from zmqswarm import Client, DeliveryError

    procs.router()
    with Client("alice", router=procs.url) as alice:
        ticket = alice.send("nobody", b"too late \xff", notify=True, ttl=0.2)  # never read
        with pytest.raises(DeliveryError) as failed:
            ticket.wait("delivered", timeout=10)
        assert failed.value.code == "expired"
    listed = zs("dead", "--router", procs.url, "--json")
    assert listed.returncode == 0, listed.stderr
    (line,) = [json.loads(x) for x in listed.stdout.splitlines()]
    assert (line["to"], line["ticket"], line["reason"]) == ("nobody", str(ticket.id), "expired")
    assert (line["payload"], line["encoding"]) == ("dG9vIGxhdGUg/w==", "base64")
    assert zs("dead", "--router", procs.url, "--drop-upto", str(line["id"])).returncode == 0
    wait_for(lambda: zs("dead", "--router", procs.url, "--json").stdout == "", 5, "the drop")
    bad = zs("dead", "--router", procs.url, "--limit", "0")
    assert bad.returncode == 2 and "--limit" in bad.stderr


def test_zs_peers_shows_who_is_online_and_what_waits_for_whom(procs: Procs) -> None:
    from zmqswarm import Client

    procs.router()
    with Client("bob", router=procs.url) as bob, Client("alice", router=procs.url) as alice:
        bob.set_state("reviewing PR 12")
        for _ in range(3):
            alice.send("carol", b"for later").wait("accepted", timeout=10)  # carol: offline

        def shown() -> bool:
            return "reviewing PR 12" in zs("peers", "--router", procs.url).stdout

        wait_for(shown, 10, "the state in zs peers")
        listed = zs("peers", "--router", procs.url, "--json")
        assert listed.returncode == 0, listed.stderr
        rows = {r["name"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert rows["bob"]["state"] == "reviewing PR 12"
    assert set(rows) == {"alice", "bob", "carol"}  # zs peers' own send-only session: not shown
    assert rows["bob"]["online"] and rows["alice"]["online"]
    assert (rows["carol"]["online"], rows["carol"]["queued"]) == (False, 3)
    assert rows["carol"]["waiting_ms"] > 0 and rows["bob"]["waiting_ms"] == 0
    text = zs("peers", "--router", procs.url).stdout
    assert "oldest" in next(line for line in text.splitlines() if line.startswith("carol"))
