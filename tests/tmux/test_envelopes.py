"""Envelope forms per profile: a program that cannot take a multi-line
paste as one gets one submission per message, never a message split in two."""

from __future__ import annotations

from pathlib import Path

import pytest

from zmqswarm import Client

from ..helpers import Procs, wait_for
from .programs import read_loop, recorder, records
from .test_agent import agent_args

TEXTS = [f"first line {i}\nsecond line {i}\tand a tab" for i in range(4)]


def joined(text: str) -> str:
    return " ⏎ ".join(text.split("\n"))


def test_a_tui_without_bracketed_paste_gets_one_submission_per_message(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """A TUI that reads keys (no bracketed paste; a newline submits, as Enter does): with
    the plain profile each message would be two submissions, envelope and body; the line
    profile puts the envelope before the body and joins its lines."""
    procs.router()
    program = recorder(tmux_socket, tmp_path, env="ZS_KEYS=1 ZS_TYPED=1")
    out = tmp_path / "tui.jsonl"
    procs.spawn(
        *agent_args("bob", program.pane, tmux_socket, procs.url, tmp_path), "--profile", "line"
    )
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", text.encode(), notify=True) for text in TEXTS]
        notes = [ticket.wait("delivered", timeout=30).note for ticket in tickets]
    wait_for(lambda: len(records(out)) >= len(TEXTS), 10, "every submission")
    got = [r["typed"] for r in records(out)]
    assert len(got) == len(TEXTS)
    for ticket, text, line in zip(tickets, TEXTS, got, strict=True):
        head = f"[zs] from alice · ticket {ticket} · reply: zs send alice '...'"
        assert line == f"{head} » {joined(text)}"
    assert all(n.startswith("submitted ") and n.endswith("enters=1") for n in notes), notes


@pytest.mark.parametrize("multiline", ["join", "file"])
def test_a_read_e_loop_gets_each_message_on_one_line(
    procs: Procs, tmux_socket: str, tmp_path: Path, multiline: str
) -> None:
    """``read -e`` (readline) reads one line: a multi-line paste would give it the envelope
    only. Joined, or as a pointer to a file holding it, each message is one line read."""
    procs.router()
    program = read_loop(tmux_socket, tmp_path, editing=True)
    profile = tmp_path / "line.toml"
    shipped = Path(__file__).parents[2] / "configs" / "profiles" / "line.toml"
    profile.write_text(
        shipped.read_text().replace('multiline = "join"', f'multiline = "{multiline}"')
    )
    args = agent_args("bob", program.pane, tmux_socket, procs.url, tmp_path)
    procs.spawn(*args, "--profile", str(profile))
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", text.encode(), notify=True) for text in TEXTS]
        for ticket in tickets:
            ticket.wait("delivered", timeout=30)
    wait_for(lambda: len(program.received()) >= len(TEXTS), 10, "every line read")
    got = program.received()
    if multiline == "join":
        assert got == [joined(text) for text in TEXTS]
    else:
        assert all(line.startswith("the message is ") for line in got), got
        assert [Path(line.rsplit(" ", 1)[1]).read_text() for line in got] == TEXTS
