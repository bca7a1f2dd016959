"""One `zs agent --tagged` process serving 50 panes of one tmux server."""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from zmqswarm import Client

from ..helpers import Procs, wait_for
from .test_agent import RECORDER, bodies

PROFILE = Path(__file__).with_name("recorder.toml")
NOTE = re.compile(r"^(\w+) wait=(\d+) paste=(\d+) submit=(\d+) verify=(\d+) ms enters=(\d+)$")


def start_tagged_recorders(socket: str, outs: list[Path]) -> list[str]:
    """One window per recorder in one session; each pane tagged agent-<i>."""
    tmux = ["tmux", "-L", socket]
    subprocess.run([*tmux, "new-session", "-d", "-s", "swarm", "-x", "120"], check=True)
    panes = []
    for i, out in enumerate(outs):
        pane = subprocess.run(
            [*tmux, "new-window", "-d", "-t", "swarm", "-P", "-F", "#{pane_id}"]
            + [f"{sys.executable} {RECORDER} {out}"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        subprocess.run([*tmux, "set-option", "-p", "-t", pane, "@zs_agent", f"agent-{i}"])
        panes.append(pane)

    def all_started() -> bool:
        shown = subprocess.run(
            [*tmux, "list-panes", "-s", "-t", "swarm", "-F", "#{pane_id}"],
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        return all(p in shown for p in panes) and all(
            "READY>"
            in subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", p], capture_output=True, text=True
            ).stdout
            for p in panes
        )

    wait_for(all_started, 60, "every recorder to start")
    return panes


@pytest.mark.solo
def test_one_agent_process_serves_fifty_tagged_panes(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """50 panes x 20 messages sent at once: each pane gets its own 20, whole, once, in order;
    the agent's own timings (its ack notes) give receipt -> submitted."""
    panes, per_pane = 50, 20
    procs.router()
    outs = [tmp_path / f"pane-{i}.jsonl" for i in range(panes)]
    start_tagged_recorders(tmux_socket, outs)
    procs.spawn(
        "-m", "zmqswarm.cli", "agent", "--tagged", "-L", tmux_socket, "--router", procs.url,
        "--journal", str(tmp_path / "agent.journal"), "--profile", str(PROFILE),
    )  # fmt: skip
    with Client("boss", router=procs.url) as boss:
        tickets = [
            (i, n, boss.send(f"agent-{i}", f"job {n} for agent-{i}".encode(), notify=True))
            for n in range(per_pane)
            for i in range(panes)
        ]
        notes = {}
        for i, n, ticket in tickets:
            notes[i, n] = ticket.wait("delivered", timeout=120).note
    for i, out in enumerate(outs):
        assert bodies(out, per_pane) == [f"job {n} for agent-{i}" for n in range(per_pane)]
    parsed = {key: NOTE.match(note) for key, note in notes.items()}
    assert all(parsed.values()), [(k, n) for k, n in notes.items() if not NOTE.match(n)][:9]
    statuses = {m.group(1) for m in parsed.values() if m}
    assert statuses == {"submitted"}
    to_submitted = {key: sum(int(m.group(g)) for g in (2, 3, 4)) for key, m in parsed.items() if m}
    first = statistics.median(v for (i, n), v in to_submitted.items() if n == 0)
    every = statistics.median(to_submitted.values())
    print(f"receipt -> submitted p50: first message per pane {first} ms, all {every} ms")  # noqa: T201
    assert first <= 250, f"ready panes: receipt -> submitted p50 {first} ms"
