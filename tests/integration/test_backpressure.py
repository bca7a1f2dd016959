"""Memory stays bounded: a full mailbox pushes back on the sender (a retriable refusal it
keeps retrying), it never drops, and everything arrives once the recipient drains it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import Procs, check_exactly_once_in_order, read_lines, wait_for


def queued_for(url: str, name: str) -> int:
    listed = subprocess.run(
        [sys.executable, "-m", "zmqswarm.cli", "peers", "--router", url, "--json"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    rows = {r["name"]: r for r in map(json.loads, listed.stdout.splitlines())}
    return int(rows[name]["queued"]) if name in rows else 0


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmRSS:")).split()[1])


@pytest.mark.timeout(30)  # ~4 s here: a refused chain retries its head alone, 4 times a second
def test_a_full_mailbox_pushes_back_and_loses_nothing(procs: Procs, tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text("[router]\nmailbox-max-messages = 2000\n")
    router = procs.router("--config", str(config))
    total = 20_000
    sender = procs.peer("send", "alice", procs.url, str(total), "bob")  # bob: not yet there
    wait_for(lambda: queued_for(procs.url, "bob") == 2000, 60, "bob's mailbox to fill")
    full_rss = rss_kib(router.pid)
    assert sender.poll() is None  # still waiting for receipts: pushed back, not dropped
    out = tmp_path / "bob.out"
    bob = procs.peer("recv", "bob", procs.url, str(total), str(out))
    assert sender.communicate(timeout=120)[0].strip() == "DONE"
    assert bob.communicate(timeout=120)[0].strip() == "DONE"
    check_exactly_once_in_order(read_lines(out), {"alice": total})
    assert queued_for(procs.url, "bob") == 0
    assert full_rss < 200 * 1024, f"router RSS {full_rss} KiB with a full 2000-message mailbox"
