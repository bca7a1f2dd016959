"""`zs agent` under faults in the window between a paste and its Enter: the agent
killed there, the pane killed there, copy mode entered there, a keystroke landing there; a
screen the profile misreads; a draft in a program no profile describes; what an agent killed
leaves behind. Each against real programs in a private tmux server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from zmqswarm import Client, DeliveryError, ZsTimeoutError

from ..helpers import Procs, wait_for
from .programs import PROGRAMS, bash, recorder, screen, tmux
from .test_agent import agent_args

WORDS = [f"step {i}" for i in range(6)]


def pane_option(socket: str, pane: str, option: str) -> str:
    return tmux(socket, "show-options", "-p", "-v", "-t", pane, option).strip()


@pytest.mark.parametrize("kind", list(PROGRAMS))
def test_an_agent_killed_between_paste_and_enter_is_finished_once(
    procs: Procs, tmux_socket: str, tmp_path: Path, kind: str
) -> None:
    """SIGKILL between the paste of message 3 and its Enter; a new agent finds the paste
    waiting in the pane (its own text, not a draft) and presses Enter: each message submitted
    exactly once, in order, none glued to the next, none waiting forever."""
    procs.router()
    program = PROGRAMS[kind](tmux_socket, tmp_path)
    args = [*agent_args("bob", program.pane, tmux_socket, procs.url, tmp_path)]
    args += ["--profile", program.profile]
    doomed = procs.spawn(*args, env={"ZS_AGENT_CRASH": "before_enter:3"})
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", program.message(w).encode(), notify=True) for w in WORDS]
        assert doomed.wait(30) == -9
        pasted = pane_option(tmux_socket, program.pane, "@zs_pasted")
        assert pasted and pasted != pane_option(tmux_socket, program.pane, "@zs_entered")
        procs.spawn(*args)
        notes = [ticket.wait("delivered", timeout=30).note for ticket in tickets]
    wait_for(lambda: len(program.received()) >= len(WORDS), 10, "every submission")
    assert program.received() == WORDS
    assert notes[2].startswith("recovered ") and "enters=1" in notes[2], notes[2]


@pytest.mark.parametrize("kind", ["bash", "bracketed tui"])
def test_a_paste_waiting_for_its_enter_is_finished_even_without_the_journal(
    procs: Procs, tmux_socket: str, tmp_path: Path, kind: str
) -> None:
    """The journal is lost with the agent: the pane's own record says a paste of ours waits
    there for its Enter. It is our text, so it is finished, never refused as a draft, and
    never pasted again."""
    procs.router()
    program = PROGRAMS[kind](tmux_socket, tmp_path)
    args = [*agent_args("bob", program.pane, tmux_socket, procs.url, tmp_path)]
    args += ["--profile", program.profile]
    doomed = procs.spawn(*args, env={"ZS_AGENT_CRASH": "before_enter:3"})
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", program.message(w).encode(), notify=True) for w in WORDS]
        assert doomed.wait(30) == -9
        (tmp_path / "bob.journal").unlink()
        procs.spawn(*args)
        notes = [ticket.wait("delivered", timeout=30).note for ticket in tickets]
    wait_for(lambda: len(program.received()) >= len(WORDS), 10, "every submission")
    assert program.received() == WORDS
    assert notes[2].startswith("recovered ") and "enters=1" in notes[2], notes[2]


def test_a_pane_killed_between_paste_and_enter_gets_the_message_into_the_next_pane(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """The pane dies with message 3 pasted and not submitted: the sender does not hear
    "delivered" for it until the pane that takes the name next has it, once."""
    procs.router()
    first = recorder(tmux_socket, tmp_path, "first")
    zs = [sys.executable, "-m", "zmqswarm.cli"]
    subprocess.run([*zs, "tag", first.pane, "bob", "-L", tmux_socket], check=True)
    args = agent_args("bob", first.pane, tmux_socket, procs.url, tmp_path)
    args = [a for a in args if a not in ("--pane", first.pane)]  # follow the tag
    procs.spawn(*args, env={"ZS_AGENT_TMUX": "before_enter:3:kill-pane"})
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", w.encode(), notify=True) for w in WORDS]
        for ticket in tickets[:2]:
            ticket.wait("delivered", timeout=30)
        wait_for(lambda: tickets[2].progress.startswith("dead: "), 10, "the agent to say dead")
        with pytest.raises(ZsTimeoutError):
            tickets[2].wait("delivered", timeout=1.0)  # in no pane: not delivered
        second = recorder(tmux_socket, tmp_path, "second")
        subprocess.run([*zs, "tag", second.pane, "bob", "-L", tmux_socket], check=True)
        notes = [ticket.wait("delivered", timeout=30).note for ticket in tickets[2:]]
    assert notes[0].startswith("submitted ") and "held=dead:" in notes[0], notes[0]
    wait_for(lambda: len(second.received()) >= 4, 10, "the second pane's submissions")
    assert first.received() == WORDS[:2]
    assert second.received() == WORDS[2:]


@pytest.mark.parametrize("kind", ["bash", "bracketed tui"])
def test_copy_mode_between_paste_and_enter_holds_the_enter_until_it_ends(
    procs: Procs, tmux_socket: str, tmp_path: Path, kind: str
) -> None:
    """Copy mode entered right after the paste of message 2: no Enter goes into copy mode;
    the message is held, and submitted once when copy mode ends; nothing merged."""
    procs.router()
    program = PROGRAMS[kind](tmux_socket, tmp_path)
    args = agent_args("bob", program.pane, tmux_socket, procs.url, tmp_path)
    env = {"ZS_AGENT_TMUX": "before_enter:2:copy-mode"}
    procs.spawn(*args, "--profile", program.profile, env=env)
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", program.message(w).encode(), notify=True) for w in WORDS]
        tickets[0].wait("delivered", timeout=30)
        wait_for(lambda: "its Enter waits" in tickets[1].progress, 10, "the held Enter")
        with pytest.raises(ZsTimeoutError):
            tickets[1].wait("delivered", timeout=1.0)
        assert program.received() == WORDS[:1]
        tmux(tmux_socket, "send-keys", "-t", program.pane, "-X", "cancel")  # the human is done
        notes = [ticket.wait("delivered", timeout=30).note for ticket in tickets]
    wait_for(lambda: len(program.received()) >= len(WORDS), 10, "every submission")
    assert program.received() == WORDS
    assert "held=deferred:" in notes[1] and "enters=1" in notes[1], notes[1]


@pytest.mark.parametrize("then", ["erases the keystroke", "clears the line"])
def test_a_keystroke_between_paste_and_enter_is_never_submitted_with_the_message(
    procs: Procs, tmux_socket: str, tmp_path: Path, then: str
) -> None:
    """A human's key lands right after the paste of message 2 in bash: the agent does not
    press Enter on a line that holds more than its text. When the human erases the key, it
    submits; when the human clears the line, the message is in no pane and pasted again."""
    procs.router()
    program = bash(tmux_socket, tmp_path)
    args = agent_args("bob", program.pane, tmux_socket, procs.url, tmp_path)
    env = {"ZS_AGENT_TMUX": "before_enter:2:send-keys -l Z"}
    procs.spawn(*args, "--profile", program.profile, env=env)
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", program.message(w).encode(), notify=True) for w in WORDS]
        wait_for(
            lambda: tickets[1].progress.startswith("typed_not_submitted: a keystroke"),
            10,
            "the agent to see the keystroke",
        )
        with pytest.raises(ZsTimeoutError):
            tickets[1].wait("delivered", timeout=1.0)
        key = "BSpace" if then == "erases the keystroke" else "C-u"
        tmux(tmux_socket, "send-keys", "-t", program.pane, key)
        notes = [ticket.wait("delivered", timeout=30).note for ticket in tickets]
    wait_for(lambda: len(program.received()) >= len(WORDS), 10, "every command's output")
    assert program.received() == WORDS
    assert "held=typed_not_submitted:" in notes[1], notes[1]
    assert "command not found" not in screen(tmux_socket, program.pane)


def test_a_keystroke_just_before_the_paste_never_makes_the_envelope_a_command(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """A key lands after the readiness look and before the paste of message 2 (the checked
    paste sees it if bash has echoed it by then, else the paste lands after it). The agent
    never submits that line; a human who presses Enter on it runs their key as typed, and
    the envelope, on a line of its own in the paste, stays a comment."""
    procs.router()
    program = bash(tmux_socket, tmp_path)
    args = agent_args("bob", program.pane, tmux_socket, procs.url, tmp_path)
    env = {"ZS_AGENT_TMUX": "before_paste:2:send-keys -l x"}
    procs.spawn(*args, "--profile", program.profile, env=env)
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", program.message(w).encode(), notify=True) for w in WORDS]
        wait_for(
            lambda: tickets[1].progress.startswith(("typed_not_submitted", "refused_draft")),
            10,
            "the agent to see the key",
        )
        with pytest.raises(ZsTimeoutError):
            tickets[1].wait("delivered", timeout=0.5)
        seen = tickets[1].progress.partition(":")[0]
        tmux(tmux_socket, "send-keys", "-t", program.pane, "Enter")  # whatever is there
        notes = [ticket.wait("delivered", timeout=30).note for ticket in tickets]
    print(f"the key was seen as {seen}; message 2: {notes[1]}")  # noqa: T201
    wait_for(lambda: len(program.received()) >= len(WORDS), 10, "every command's output")
    assert program.received() == WORDS
    shown = screen(tmux_socket, program.pane)
    assert "x: command not found" in shown  # the human's key, run as they typed it
    assert shown.count("command not found") == 1, shown


def test_a_screen_the_profile_misreads_ends_its_wait_with_the_reason(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """A read loop drawing "$ $" is read by the shell profile as a draft "$" after a prompt:
    the message waits, says why, and is given up after the profile's max-hold, with that
    reason, to the sender; it is never pasted."""
    procs.router()
    out = tmp_path / "loop.out"
    script = tmp_path / "loop.sh"
    script.write_text(f"while IFS= read -r -p '$ $' line; do echo \"$line\" >> {out}; done\n")
    pane = tmux(
        tmux_socket, "new-session", "-d", "-s", "loop", "-P", "-F", "#{pane_id}",
        f"bash --norc --noprofile {script}",
    ).strip()  # fmt: skip
    profile = tmp_path / "shell-short.toml"
    shell = Path(__file__).parents[2] / "configs" / "profiles" / "shell.toml"
    profile.write_text(shell.read_text() + "max-hold = 2\n")
    procs.spawn(
        *agent_args("bob", pane, tmux_socket, procs.url, tmp_path), "--profile", str(profile)
    )
    with Client("alice", router=procs.url) as alice:
        ticket = alice.send("bob", b"hello", notify=True)
        wait_for(lambda: ticket.progress.startswith("refused_draft: "), 10, "the reason")
        assert "of at most 2s" in ticket.progress, ticket.progress
        with pytest.raises(DeliveryError) as ended:
            ticket.wait("delivered", timeout=10)
    assert ended.value.code == "expired"
    assert "stalled: held 2s, the bound is 2s: refused_draft: a draft is typed: '$'" in str(
        ended.value.reason
    )
    assert not out.exists()


def test_a_draft_in_a_program_no_profile_describes_is_not_written_over(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """The plain profile has no prompt to read, but it knows the input line as it was when
    last known empty: a human's half-typed line extends it, and the message waits."""
    procs.router()
    program = recorder(tmux_socket, tmp_path, env="ZS_TYPED=1")
    procs.spawn(*agent_args("bob", program.pane, tmux_socket, procs.url, tmp_path))
    with Client("alice", router=procs.url) as alice:
        alice.send("bob", b"first", notify=True).wait("delivered", timeout=30)
        tmux(tmux_socket, "send-keys", "-t", program.pane, "-l", "draft by a human")
        ticket = alice.send("bob", b"second", notify=True)
        wait_for(lambda: ticket.progress.startswith("refused_draft: "), 10, "the draft seen")
        assert "'draftbyahuman'" in ticket.progress, ticket.progress
        for _ in "draft by a human":
            tmux(tmux_socket, "send-keys", "-t", program.pane, "BSpace")  # the human gives up
        ticket.wait("delivered", timeout=30)
    wait_for(lambda: len(program.received()) >= 2, 10, "both submissions")
    assert program.received() == ["first", "second"]


def control_clients(socket: str) -> list[int]:
    """Live `tmux -L <socket> -C ...` processes (any parent)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if socket.encode() in argv and b"-C" in argv:
            found.append(int(pid))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_no_control_client_outlives_a_killed_agent(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    procs.router()
    program = recorder(tmux_socket, tmp_path)
    agent = procs.spawn(*agent_args("bob", program.pane, tmux_socket, procs.url, tmp_path))
    with Client("alice", router=procs.url) as alice:
        alice.send("bob", b"hello", notify=True).wait("delivered", timeout=30)
    assert len(control_clients(tmux_socket)) == 3  # write lane, query lane, doorbell
    os.kill(agent.pid, signal.SIGKILL)
    wait_for(lambda: not control_clients(tmux_socket), 5, "the control clients to go")
    attached = tmux(tmux_socket, "list-clients", "-F", "#{client_pid}")
    assert attached.strip() == ""
