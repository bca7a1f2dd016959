"""A thousand peers at once: real processes, many peers each (crowd.py)."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zmqswarm.observe import list_peers
from zmqswarm.observe.observer import Observer

from ..helpers import Procs, wait_for
from .crowd import Crowd

ZS = [sys.executable, "-m", "zmqswarm.cli"]
PEERS = 1000


@pytest.mark.solo
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


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_router_raises_its_open_files_limit_to_take_its_peers(procs: Procs) -> None:
    """Started under a soft limit of 256 open files (the hard one higher), the router takes
    400 peers: a descriptor each, past what the soft limit allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip(f"the hard limit on open files here is {hard}")
    router = [sys.executable, "-m", "zmqswarm.cli", "router", "--bind", procs.url]
    lowered = (
        "import os, resource, sys\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        f"os.execv(sys.executable, {router!r})\n"
    )
    procs.spawn("-c", lowered)
    wait_for(Path(procs.url[len("ipc://") :]).exists, 10, "the router's socket")
    crowd = Crowd(procs, procs.url, total=400, processes=1)
    crowd.go()
    crowd.welcomed(timeout=30)
    online = sum(p.online for p in list_peers(procs.url) if p.name.startswith("crowd"))
    assert online == 400
    crowd.close()
