"""`zs agent` under random faults: SIGKILLs and copy-mode toggles at random moments
during 100 messages each into a bracketed TUI and bash, and a human typing while messages
arrive. Counted at the programs: nothing lost, nothing twice, nothing merged. The seed of each
run is in the failure message, to replay it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from zmqswarm import Client, Ticket

from ..helpers import Procs, wait_for
from .programs import Program, bash, lines, new_pane, recorder, screen, tmux

COUNT = 100


def serve_tagged(procs: Procs, socket: str, tmp: Path, programs: dict[str, Program]) -> list[str]:
    zs = [sys.executable, "-m", "zmqswarm.cli", "agent"]
    for name, program in programs.items():
        tag = [*zs, "tag", program.pane, name, "-L", socket, "--profile", program.profile]
        subprocess.run(tag, check=True)
    return ["-m", "zmqswarm.cli", "agent", "--tagged", "-L", socket, "--router", procs.url,
            "--journal", str(tmp / "agent.journal")]  # fmt: skip


def send_all(alice: Client, programs: dict[str, Program], words: list[str]) -> list[Ticket]:
    return [
        alice.send(name, program.message(word).encode(), notify=True)
        for word in words
        for name, program in programs.items()
    ]


def stranded(socket: str, programs: dict[str, Program]) -> int:
    """Panes holding a paste of ours that waits for its Enter."""
    count = 0
    for program in programs.values():
        fmt = "#{==:#{@zs_pasted},#{@zs_entered}}"
        same = tmux(socket, "display-message", "-p", "-t", program.pane, fmt).strip()
        count += same == "0"
    return count


@pytest.mark.timeout(180)
def test_twenty_sigkills_during_a_hundred_messages_lose_repeat_and_merge_nothing(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    procs.router()
    programs = {"tui": recorder(tmux_socket, tmp_path), "sh": bash(tmux_socket, tmp_path)}
    args = serve_tagged(procs, tmux_socket, tmp_path, programs)
    words = [f"m{i}" for i in range(COUNT)]
    agent = procs.spawn(*args)
    kills = in_window = 0

    def arrived() -> int:
        return sum(len(p.received()) for p in programs.values())

    with Client("alice", router=procs.url) as alice:
        tickets = send_all(alice, programs, words)
        while kills < 20 and arrived() < 2 * COUNT:
            before = arrived()
            wait_for(lambda b=before: arrived() > b, 30, f"progress (seed {seed})")  # type: ignore[misc]
            time.sleep(rng.uniform(0.0, 0.6))  # the fault's timing, not a synchronisation
            os.kill(agent.pid, signal.SIGKILL)
            agent.wait(10)
            kills += 1
            in_window += stranded(tmux_socket, programs)
            agent = procs.spawn(*args)
        for ticket in tickets:
            ticket.wait("delivered", timeout=60)
    assert kills == 20, f"only {kills} kills before the end (seed {seed})"
    for name, program in programs.items():
        wait_for(lambda p=program: len(p.received()) >= COUNT, 10, f"{name}'s submissions")  # type: ignore[misc]
        assert program.received() == words, f"{name} (seed {seed}, {in_window} in the window)"
    print(f"seed {seed}: 20 kills, {in_window} with a paste waiting for its Enter")  # noqa: T201


@pytest.mark.timeout(180)
def test_copy_mode_toggled_at_random_during_a_hundred_messages_loses_repeats_and_merges_nothing(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    procs.router()
    programs = {"tui": recorder(tmux_socket, tmp_path), "sh": bash(tmux_socket, tmp_path)}
    procs.spawn(*serve_tagged(procs, tmux_socket, tmp_path, programs))
    words = [f"m{i}" for i in range(COUNT)]
    stop = threading.Event()
    toggles = [0]

    def toggle() -> None:
        panes = [p.pane for p in programs.values()]
        while not stop.is_set():
            pane = rng.choice(panes)
            tmux(tmux_socket, "copy-mode", "-t", pane)
            toggles[0] += 1
            stop.wait(rng.uniform(0.02, 0.5))  # how long a human scrolls
            tmux(tmux_socket, "send-keys", "-t", pane, "-X", "cancel")
            stop.wait(rng.uniform(0.02, 0.4))

    toggler = threading.Thread(target=toggle, daemon=True)
    with Client("alice", router=procs.url) as alice:
        tickets = send_all(alice, programs, words)
        toggler.start()
        try:
            notes = [t.wait("delivered", timeout=150).note for t in tickets]
        finally:
            stop.set()
            toggler.join(5)
    for name, program in programs.items():
        wait_for(lambda p=program: len(p.received()) >= COUNT, 10, f"{name}'s submissions")  # type: ignore[misc]
        assert program.received() == words, f"{name} (seed {seed}, {toggles[0]} toggles)"
    held = sum("held=" in note and "deferred:" in note for note in notes)
    print(f"seed {seed}: {toggles[0]} toggles, {held} messages held for copy mode")  # noqa: T201


@pytest.mark.timeout(180)
def test_a_human_typing_while_messages_arrive_gets_nothing_executed_or_merged(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """bash; a human types short commands, a key every 100-350 ms, and pauses between them.
    Before their Enter they read their line: if it holds anything but what they typed (a
    message came in), they clear it with C-u. 20 messages meanwhile: each runs once, every
    human command runs once, none is merged with another, no envelope runs."""
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    procs.router()
    shell = "env PS1='zs$ ' bash --norc --noprofile"
    pane = new_pane(tmux_socket, "sh", f"cd {tmp_path} && {shell}", "zs$")
    out = tmp_path / "sh.out"
    program = Program(pane, "shell", lambda w: f"printf '%s\\n' '{w}' >> {out}", lambda: lines(out))
    procs.spawn(
        "-m", "zmqswarm.cli", "agent", "--name", "bob", "--pane", pane, "-L", tmux_socket,
        "--router", procs.url, "--journal", str(tmp_path / "bob.journal"), "--profile", "shell",
    )  # fmt: skip
    stop = threading.Event()
    typed: list[str] = []
    cleared = [0]

    def line() -> str:
        y = int(tmux(tmux_socket, "display-message", "-p", "-t", pane, "#{cursor_y}"))
        return tmux(tmux_socket, "capture-pane", "-p", "-t", pane).split("\n")[y].rstrip()

    def human() -> None:
        k = 0
        while not stop.is_set():
            command = f"echo h{k}>>H"
            for key in command:
                tmux(tmux_socket, "send-keys", "-t", pane, "-l", key)
                if stop.wait(rng.uniform(0.1, 0.35)):
                    return
            if line() == f"zs$ {command}":
                tmux(tmux_socket, "send-keys", "-t", pane, "Enter")
                typed.append(f"h{k}")
                k += 1
            else:
                tmux(tmux_socket, "send-keys", "-t", pane, "C-u")
                cleared[0] += 1
            stop.wait(rng.uniform(0.3, 1.0))

    words = [f"m{i}" for i in range(20)]
    typist = threading.Thread(target=human, daemon=True)
    with Client("alice", router=procs.url) as alice:
        typist.start()
        tickets = [alice.send("bob", program.message(w).encode(), notify=True) for w in words]
        try:
            notes = [t.wait("delivered", timeout=150).note for t in tickets]
        finally:
            stop.set()
            typist.join(5)
    wait_for(lambda: len(program.received()) >= len(words), 10, "every message's command")
    assert program.received() == words, f"seed {seed}"
    shown = screen(tmux_socket, pane)
    assert "command not found" not in shown, f"seed {seed}: {shown}"
    human_out = tmp_path / "H"
    wait_for(
        lambda: human_out.exists() and len(human_out.read_text().split()) >= len(typed), 10, "H"
    )
    assert human_out.read_text().split() == typed, f"seed {seed}"
    held = sum("typed_not_submitted" in n or "refused_draft" in n for n in notes)
    print(  # noqa: T201
        f"seed {seed}: {len(typed)} human commands, {cleared[0]} lines cleared by the human,"
        f" {held} of 20 messages waited for the human"
    )
