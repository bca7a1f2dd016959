"""The router's journal with real processes: what was receipted survives kill -9, one router
per journal, a damaged journal stops the router, a full disk stops receipts (not delivery)
until space returns, and a clean stop says what it keeps."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from zmqswarm import Client, ZsTimeoutError
from zmqswarm.observe import snapshot
from zmqswarm.router.crash import POINTS

from ..helpers import (
    Procs,
    check_exactly_once_in_order,
    power_loss,
    read_lines,
    router_stats,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)


def _send_all(url: str, to: str, n: int, name: str = "alice") -> None:
    """``n`` numbered messages to ``to``, every one receipted before this returns."""
    with Client(name, router=url) as client:
        for i in range(n):
            client.send(to, f"{i}".encode())
        assert client.close(timeout=30) == []


def _receive(url: str, name: str, n: int) -> list[int]:
    got = []
    with Client(name, router=url) as client:
        for _ in range(n):
            got.append(int(client.recv(timeout=10).payload))
        with pytest.raises(ZsTimeoutError):  # and nothing more
            extra = client.recv(timeout=0.3)
            raise AssertionError(f"one more: {extra!r}")
    return got


def test_receipted_mail_survives_kill_9_and_arrives_once_in_order(
    procs: Procs, tmp_path: Path
) -> None:
    data = tmp_path / "journal"
    router = procs.router("--data-dir", str(data))
    _send_all(procs.url, "bob", 2000)  # bob is offline: all of it waits in the router
    router.send_signal(signal.SIGKILL)
    router.wait(10)
    router = procs.router("--data-dir", str(data))
    assert _receive(procs.url, "bob", 2000) == list(range(2000))
    stats = router_stats(router)
    assert stats["accepted"] == 0 and stats["acked"] == 2000  # it all came from the disk


def test_a_sender_resending_after_a_restart_gets_receipts_not_copies(
    procs: Procs, tmp_path: Path
) -> None:
    """The watermark is on disk with the messages: the same incarnation's resends after a
    restart are duplicates."""
    data = tmp_path / "journal"
    router = procs.router("--data-dir", str(data))
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", f"{i}".encode()) for i in range(100)]
        for ticket in tickets:
            ticket.wait("accepted", timeout=10)
        router.send_signal(signal.SIGKILL)
        router.wait(10)
        router = procs.router("--data-dir", str(data))
        alice.send("bob", b"100").wait("accepted", timeout=10)  # the session is back
    assert _receive(procs.url, "bob", 101) == list(range(101))
    assert router_stats(router)["accepted"] == 1


def test_one_router_per_journal(procs: Procs, tmp_path: Path) -> None:
    data = tmp_path / "journal"
    procs.router("--data-dir", str(data))
    other = procs.spawn(
        "-m", "zmqswarm.cli", "router", "--bind", f"ipc://{tmp_path}/other", "--data-dir", str(data)
    )
    _, err = other.communicate(timeout=20)
    assert other.returncode == 1
    assert f"the journal in {data} is in use by another router (pid" in err


def test_a_damaged_journal_stops_the_router_with_what_to_do(procs: Procs, tmp_path: Path) -> None:
    data = tmp_path / "journal"
    data.mkdir()
    (data / "journal.sqlite3").write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    router = procs.spawn(
        "-m", "zmqswarm.cli", "router", "--bind", procs.url, "--data-dir", str(data)
    )
    _, err = router.communicate(timeout=20)
    assert router.returncode == 1
    assert "journal" in err and "move it aside" in err or "cannot open" in err, err
    assert "Traceback" not in err


def test_a_clean_stop_says_what_it_keeps_for_whom(procs: Procs, tmp_path: Path) -> None:
    router = procs.router("--data-dir", str(tmp_path / "journal"))
    _send_all(procs.url, "bob", 3)
    _send_all(procs.url, "carol", 2, name="dave")
    router.send_signal(signal.SIGTERM)
    _, err = router.communicate(timeout=20)
    assert "keeps 5 messages for: bob 3, carol 2" in err


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own (root only: skipped elsewhere)."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_full_disk_stops_receipts_not_delivery_until_space_returns(
    procs: Procs, small_disk: Path
) -> None:
    data = small_disk / "journal"
    router = procs.router("--data-dir", str(data))
    with Client("alice", router=procs.url) as alice:

        def stat(name: str) -> int:
            alice.poll(0.01)  # alice keeps taking what comes back meanwhile
            return snapshot(procs.url).stats.get(name, 0)

        alice.send("bob", b"first").wait("accepted", timeout=10)
        filler = small_disk / "filler"
        with open(filler, "wb") as f:  # leave the journal no room at all
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        payload = b"x" * 2048
        # Taken in before the journal failed: held in memory, not receipted.
        tickets = [alice.send("bob", payload) for _ in range(50)]
        wait_for(lambda: stat("store_failures") > 0, 20, "the journal failing to write")
        # Sent after: refused, retriable, until the journal writes again.
        tickets += [alice.send("bob", payload) for _ in range(50)]
        wait_for(lambda: stat("nack_store_full") > 0, 20, "a STORE_FULL refusal")
        assert [t.state for t in tickets] == ["pending"] * 100  # nothing receipted unwritten
        with Client("bob", router=procs.url) as bob:  # delivery of what is stored goes on
            assert bob.recv(timeout=10).payload == b"first"
        filler.unlink()  # space returns
        for ticket in tickets:
            ticket.wait("accepted", timeout=30)
    with Client("bob", router=procs.url) as bob:
        got = [bob.recv(timeout=10).payload for _ in range(100)]
        with pytest.raises(ZsTimeoutError):
            bob.recv(timeout=0.3)
    assert got == [payload] * 100
    stats = router_stats(router)
    assert stats["store_failures"] >= 1 and stats["nack_store_full"] >= 1


def test_mail_beyond_the_memory_budget_waits_on_disk_and_arrives_in_order(
    procs: Procs, tmp_path: Path
) -> None:
    """With room for about 80 messages in memory, 3,000 for one name wait mostly on disk,
    across a kill -9, and are read back a page at a time, in order, once each."""
    config = tmp_path / "zs.toml"
    config.write_text("[router]\nresident-bytes = 20000\n")
    data = str(tmp_path / "journal")
    router = procs.router("--data-dir", data, "--config", str(config))
    _send_all(procs.url, "bob", 2000)
    router.send_signal(signal.SIGKILL)
    router.wait(10)
    router = procs.router("--data-dir", data, "--config", str(config))
    _send_all(procs.url, "bob", 1000, name="carol")
    with Client("bob", router=procs.url) as bob:
        got = [(m.sender, int(m.payload)) for m in (bob.recv(timeout=10) for _ in range(3000))]
        with pytest.raises(ZsTimeoutError):
            bob.recv(timeout=0.3)
    assert got == [("alice", i) for i in range(2000)] + [("carol", i) for i in range(1000)]
    assert router_stats(router)["acked"] == 3000


@pytest.mark.parametrize("point", sorted(POINTS))
def test_a_router_killed_at_any_crash_point_loses_and_repeats_nothing(
    point: str, procs: Procs, tmp_path: Path
) -> None:
    """The router SIGKILLs itself at ``point`` mid-stream, then loses what it had not
    fsynced (a power cut); restarted on the same journal, the sender resends what was not
    receipted, and each recipient gets every message once, in order: bob, connected
    throughout, and carol, who connects only after the restart (what she gets comes from
    the disk, or from a resend of what was never receipted)."""
    data = tmp_path / "journal"
    crashing = {"ZS_CRASH_AT": f"{point}:40", "ZS_RECORD_FSYNC": "1"}
    router = procs.router("--data-dir", str(data), env=crashing)
    bob_out, carol_out = tmp_path / "bob.out", tmp_path / "carol.out"
    bob = procs.peer("take", "bob", procs.url, str(bob_out), "--last", "alice:1998")
    alice = procs.peer("send", "alice", procs.url, "2000", "bob,carol", "2000")
    assert router.wait(30) == -signal.SIGKILL, f"never reached {point}"
    power_loss(data)
    router = procs.router("--data-dir", str(data))
    carol = procs.peer("take", "carol", procs.url, str(carol_out), "--last", "alice:1999")
    assert alice.communicate(timeout=60)[0].split() == ["DONE"]
    for recipient in (bob, carol):
        assert recipient.communicate(timeout=60)[0].split()[0] == "DONE"
    check_exactly_once_in_order(read_lines(bob_out), {"alice": 1000})
    check_exactly_once_in_order(read_lines(carol_out), {"alice": 1000})
