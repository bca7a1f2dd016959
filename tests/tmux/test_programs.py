"""200 hostile multi-line messages each into bash, the python3 REPL and the bracketed-paste
recorder, all served by one `zs agent --tagged` process (each pane with its own profile):
every message arrives whole (as documented: sanitized), submitted exactly once, in order."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zmqswarm import Client
from zmqswarm.agent.paste import sanitize

from ..helpers import Procs, wait_for
from .test_agent import RECORDER, bodies

COUNT = 200
PROFILES = Path(__file__).with_name("recorder.toml")


def payload(i: int) -> str:
    """Quotes, $, backticks, #{}, ;, &, |, a tab, UTF-8, and an end-of-paste sequence."""
    return (
        f"msg {i}: \"dq\" 'sq' $HOME $(echo no) `no` #{{pane_id}} ; & | tab\tend é ✓ 漢\n"
        f"  second line {i} \x1b[201~ after the fake end-of-paste\n"
        f"third line {i}"
    )


def as_bash(text: str, out: Path) -> str:
    # A quoted here-document keeps every byte literal; bash runs it once, on the Enter.
    return f"cat >> {out} <<'ZS_END'\n{text}\nZS_END"


def as_python(text: str, out: Path) -> str:
    # One statement (the REPL compiles a paste line by line); a raw triple-quoted string.
    return f'open("{out}", "a").write(r"""{text}""" + "\\n")'


def new_pane(socket: str, session: str, command: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-s", session, "-x", "200", "-y", "50"]
        + ["-P", "-F", "#{pane_id}", command],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def screen(socket: str, pane: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, "capture-pane", "-p", "-t", pane], capture_output=True, text=True
    ).stdout


@pytest.mark.timeout(240)
def test_two_hundred_hostile_messages_into_bash_python_and_a_recorder(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    procs.router()
    bash_out, py_out, rec_out = tmp_path / "bash.out", tmp_path / "py.out", tmp_path / "rec.jsonl"
    panes = {
        "bash": (new_pane(tmux_socket, "sh", "env PS1='zs$ ' bash --norc --noprofile"), "shell"),
        "py": (new_pane(tmux_socket, "py", f"{sys.executable} -q"), "python"),
        "rec": (new_pane(tmux_socket, "rec", f"{sys.executable} {RECORDER} {rec_out}"), ""),
    }
    for name, (pane, _) in panes.items():
        ready = {"bash": "zs$", "py": ">>>", "rec": "READY>"}[name]
        wait_for(lambda p=pane, r=ready: r in screen(tmux_socket, p), 10, f"{name} to start")  # type: ignore[misc]
    zs = [sys.executable, "-m", "zmqswarm.cli", "agent"]
    for name, (pane, profile) in panes.items():
        subprocess.run(
            [*zs, "tag", pane, name, "-L", tmux_socket, "--profile", profile or str(PROFILES)],
            check=True,
        )
    procs.spawn(
        *zs[1:], "--tagged", "-L", tmux_socket, "--router", procs.url,
        "--journal", str(tmp_path / "agent.journal"),
    )  # fmt: skip
    texts = [payload(i) for i in range(COUNT)]
    with Client("boss", router=procs.url) as boss:
        tickets = []
        for text in texts:
            tickets.append(boss.send("bash", as_bash(text, bash_out).encode(), notify=True))
            tickets.append(boss.send("py", as_python(text, py_out).encode(), notify=True))
            tickets.append(boss.send("rec", text.encode(), notify=True))
        notes = [ticket.wait("delivered", timeout=200).note for ticket in tickets]
    assert all(note.startswith("submitted ") for note in notes), {n.split()[0] for n in notes}
    expected = [sanitize(text) for text in texts]
    assert "\x1b" not in "".join(expected) and "[201~" in expected[0]
    assert bodies(rec_out, COUNT) == expected
    wait_for(lambda: py_out.exists() and py_out.read_text().count("third line") >= COUNT, 10, "py")
    wait_for(
        lambda: bash_out.exists() and bash_out.read_text().count("third line") >= COUNT, 10, "sh"
    )
    # The python profile's documented expand-tabs: its REPL takes a paste as typing.
    assert py_out.read_text() == "".join(f"{t}\n".replace("\t", "    ") for t in expected)
    assert bash_out.read_text() == "".join(f"{t}\n" for t in expected)
