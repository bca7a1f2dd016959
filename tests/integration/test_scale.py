"""A thousand peers at once: real processes, many peers each (crowd.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from zmqswarm.observe.observer import Observer

from ..helpers import Procs
from .crowd import Crowd

ZS = [sys.executable, "-m", "zmqswarm.cli"]
PEERS = 1000


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_thousand_peers_connecting_at_once_are_welcomed_and_shown_online_within_2s(
    procs: Procs,
) -> None:
    """Four processes of 250 peers each let go at once. Within 2 s of that moment every peer
    has its Welcome, and an observer (the state feed `zs monitor` folds) shows all of them
    online; `zs peers --json` lists them too."""
    procs.router()  # as a user runs it: journal on
    crowd = Crowd(procs, procs.url, total=PEERS, processes=4)
    observer = Observer(procs.url)
    updates = observer.watch(tick=0.02)
    try:
        next(updates)
        start = crowd.go()
        shown = None
        for state in updates:  # every tick, or as each Update lands
            online = sum(row.online for name, row in state.peers.items() if name[:5] == "crowd")
            if online == PEERS:
                shown = time.monotonic() - start
                break
            assert time.monotonic() - start < 30, f"{online} of {PEERS} online after 30 s"
        welcomed = crowd.welcomed(timeout=30)
    finally:
        updates.close()
    assert shown is not None and shown <= 2.0, f"all online after {shown:.2f} s"
    assert max(welcomed) <= 2.0, f"welcomed after {welcomed} s"
    listed = subprocess.run(
        [*ZS, "peers", "--json", "--router", procs.url], capture_output=True, text=True, timeout=30
    )
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert sum(r["online"] for r in rows if r["name"].startswith("crowd")) == PEERS
    crowd.close()
