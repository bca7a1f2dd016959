"""Programs for agent tests, each in a pane of the test's private tmux server: how to start
it, which profile serves it, what to send it so that its effect is countable, and how to
read what it received, one entry per submission, in order."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..helpers import wait_for

RECORDER = Path(__file__).with_name("recorder.py")


@dataclass
class Program:
    pane: str
    profile: str
    message: Callable[[str], str]  # the text to send so that ``word`` is what arrives
    received: Callable[[], list[str]]  # the words that arrived, one per submission


def tmux(socket: str, *args: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=True
    ).stdout


def screen(socket: str, pane: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", socket, "capture-pane", "-p", "-J", "-S", "-", "-t", pane],
        capture_output=True,
        text=True,
    )
    return done.stdout


def new_pane(socket: str, session: str, command: str, shows: str) -> str:
    """A pane running ``command`` in a new session, once its screen ``shows`` something."""
    pane = tmux(
        socket, "new-session", "-d", "-s", session, "-x", "160", "-y", "40",
        "-P", "-F", "#{pane_id}", command,
    ).strip()  # fmt: skip
    wait_for(lambda: shows in screen(socket, pane), 10, f"{session} to start")
    return pane


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def records(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in lines(path)]


def bash(socket: str, tmp: Path, session: str = "sh") -> Program:
    """bash at a prompt; each message a command appending its word to a file."""
    out = tmp / f"{session}.out"
    pane = new_pane(socket, session, "env PS1='zs$ ' bash --norc --noprofile", "zs$")
    return Program(pane, "shell", lambda w: f"printf '%s\\n' '{w}' >> {out}", lambda: lines(out))


def python(socket: str, tmp: Path, session: str = "py") -> Program:
    out = tmp / f"{session}.out"
    pane = new_pane(socket, session, f"{sys.executable} -q", ">>>")
    return Program(
        pane, "python", lambda w: f"open('{out}', 'a').write('{w}\\n')", lambda: lines(out)
    )


def read_loop(socket: str, tmp: Path, session: str = "loop", *, editing: bool = False) -> Program:
    """A shell read loop (``read -e``: with readline) appending each line it reads; it shows
    a "> " prompt. Received: the body after the envelope prefix."""
    out = tmp / f"{session}.out"
    script = tmp / f"{session}.sh"
    flags = "-e -r" if editing else "-r"
    script.write_text(
        f"while IFS= read {flags} -p '> ' line; do printf '%s\\n' \"$line\" >> {out}; done\n"
    )
    pane = new_pane(socket, session, f"bash --norc --noprofile {script}", ">")
    return Program(pane, "line", lambda w: w, lambda: [b.partition(" » ")[2] for b in lines(out)])


def recorder(socket: str, tmp: Path, session: str = "tui", env: str = "") -> Program:
    """The bracketed-paste recorder (a raw-mode TUI): one record per submission."""
    out = tmp / f"{session}.jsonl"
    pane = new_pane(socket, session, f"{env} {sys.executable} {RECORDER} {out}", "READY>")
    return Program(
        pane,
        "plain",
        lambda w: w,
        lambda: [r["paste"].partition("\n")[2] + r["typed"] for r in records(out)],
    )


PROGRAMS: dict[str, Callable[[str, Path], Program]] = {
    "read loop": read_loop,
    "bash": bash,
    "python": python,
    "bracketed tui": recorder,
}
