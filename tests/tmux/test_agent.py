"""`zs agent` end to end: router process, agent process, a real program in a private pane."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from zmqswarm import Client, ZsTimeoutError
from zmqswarm.agent.paste import sanitize

from ..helpers import Procs, router_stats, wait_for

RECORDER = Path(__file__).with_name("recorder.py")


def state_of(name: str, router: str) -> str:
    """What ``zs peers`` shows as ``name``'s state."""
    from zmqswarm.observe.query import list_peers

    return next((p.state for p in list_peers(router, timeout=5) if p.name == name), "")


def records(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def bodies(path: Path, expect: int = 0) -> list[str]:
    """What each submission pasted, minus the envelope line; first waits (bounded) until
    the program has recorded ``expect`` of them: "delivered" means the Enter went out, not
    that the program has processed it yet."""
    wait_for(lambda: len(records(path)) >= expect, 10, f"{expect} records in {path.name}")
    return [r["paste"].partition("\n")[2] for r in records(path) if "paste" in r]


def start_recorder(
    socket: str,
    out: Path,
    session: str = "work",
    busy: float = 0,
    placeholder: str = "",
    env: str = "",
) -> str:
    pane = subprocess.run(
        [
            "tmux",
            "-L",
            socket,
            "new-session",
            "-d",
            "-s",
            session,
            "-P",
            "-F",
            "#{pane_id}",
            f"{env} ZS_PLACEHOLDER='{placeholder}' {sys.executable} {RECORDER} {out} {busy}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    def started() -> bool:
        shown = subprocess.run(
            ["tmux", "-L", socket, "capture-pane", "-p", "-t", pane], capture_output=True, text=True
        ).stdout
        return ("READY>" in shown) or ("working" in shown)

    wait_for(started, 10, "the recorder to start")
    return pane


def agent_args(name: str, pane: str, socket: str, url: str, tmp: Path) -> list[str]:
    return [
        "-m", "zmqswarm.cli", "agent", "--name", name, "--pane", pane, "-L", socket,
        "--router", url, "--journal", str(tmp / f"{name}.journal"),
    ]  # fmt: skip


@pytest.mark.parametrize("point", ["before_paste", "before_enter", "after_paste"])
def test_agent_killed_around_a_paste_neither_loses_nor_repeats(
    procs: Procs, tmux_socket: str, tmp_path: Path, point: str
) -> None:
    """SIGKILL the agent just before / just after pasting message 3, start it again: every
    message is in the pane exactly once, in order."""
    procs.router()
    out = tmp_path / "pane.jsonl"
    pane = start_recorder(tmux_socket, out)
    args = agent_args("bob", pane, tmux_socket, procs.url, tmp_path)
    doomed = procs.spawn(*args, env={"ZS_AGENT_CRASH": f"{point}:3"})
    texts = [f"step {i}" for i in range(6)]
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", text.encode(), notify=True) for text in texts]
        assert doomed.wait(30) == -9  # killed at the crash point
        procs.spawn(*args)  # same journal, no crash point
        for ticket in tickets:
            ticket.wait("delivered", timeout=30)
    assert bodies(out, len(texts)) == texts


@pytest.mark.parametrize("point", ["before_paste", "before_enter"])
def test_a_tmux_failure_mid_delivery_is_retried_without_a_second_paste(
    procs: Procs, tmux_socket: str, tmp_path: Path, point: str
) -> None:
    """tmux fails once just before the paste / between paste and Enter of message 2: the
    agent tries the same message again (order kept); the journal says whether the paste went
    out, so it is pasted exactly once and submitted once."""
    procs.router()
    out = tmp_path / "pane.jsonl"
    pane = start_recorder(tmux_socket, out)
    args = agent_args("bob", pane, tmux_socket, procs.url, tmp_path)
    procs.spawn(*args, env={"ZS_AGENT_FAIL": f"{point}:2"})
    texts = [f"item {i}" for i in range(4)]
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", t.encode(), notify=True) for t in texts]
        notes = [ticket.wait("delivered", timeout=30).note for ticket in tickets]
    assert bodies(out, len(texts)) == texts
    assert records(out)[1]["typed"] == ""  # one paste, one Enter: nothing extra typed
    assert notes[1].startswith("recovered" if point == "before_enter" else "submitted")


def test_messages_sent_to_a_name_land_in_its_pane_in_order(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    procs.router()
    out = tmp_path / "pane.jsonl"
    pane = start_recorder(tmux_socket, out)
    procs.spawn(*agent_args("bob", pane, tmux_socket, procs.url, tmp_path))
    texts = [f"task {i}: fix 'the' $bug in #{{file}}; then\nrun tests\t(all)" for i in range(20)]
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", text.encode(), notify=True) for text in texts]
        for ticket in tickets:
            ticket.wait("delivered", timeout=30)  # acked only after the Enter went out
    bodies(out, len(texts))  # wait until the program has recorded them all
    got = records(out)
    assert len(got) == len(texts)
    for ticket, body, record in zip(tickets, texts, got, strict=True):
        head, _, text = record["paste"].partition("\n")
        assert head == f"[zs] from alice · ticket {ticket} · reply: zs send alice '...'"
        assert text == sanitize(body)
        assert record["typed"] == ""


def test_a_killed_pane_keeps_its_mail_at_the_router_until_a_new_pane_takes_the_name(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    procs.router()
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    pane = start_recorder(tmux_socket, first)
    zs = [sys.executable, "-m", "zmqswarm.cli"]
    subprocess.run([*zs, "tag", pane, "bob", "-L", tmux_socket], check=True)
    args = agent_args("bob", pane, tmux_socket, procs.url, tmp_path)
    procs.spawn(*[a for a in args if a not in ("--pane", pane)])  # follow the tag
    with Client("alice", router=procs.url) as alice:
        early = [alice.send("bob", f"early {i}".encode(), notify=True) for i in range(3)]
        for ticket in early:
            ticket.wait("delivered", timeout=30)
        wait_for(lambda: state_of("bob", procs.url) == f"live {pane}", 10, "live in zs peers")
        subprocess.run(["tmux", "-L", tmux_socket, "kill-pane", "-t", pane], check=True)
        # No message pending: the agent tells the router of the death on its own.
        wait_for(lambda: state_of("bob", procs.url) == "dead: no live pane", 10, "dead shown")
        late = [alice.send("bob", f"late {i}".encode(), notify=True) for i in range(3)]
        for ticket in late:
            ticket.wait("accepted", timeout=10)  # the router holds them
        with pytest.raises(ZsTimeoutError):
            late[0].wait("delivered", timeout=1.5)  # no pane: nothing is pasted anywhere
        wait_for(lambda: late[0].progress.startswith("dead: "), 10, "the agent to say dead")
        new_pane = start_recorder(tmux_socket, second, session="work2")
        subprocess.run([*zs, "tag", new_pane, "bob", "-L", tmux_socket], check=True)
        for ticket in late:
            ticket.wait("delivered", timeout=30)
        assert " held=dead:" in late[0].note  # the final notice says how long it waited
        wait_for(lambda: state_of("bob", procs.url) == f"live {new_pane}", 10, "live again")
    assert bodies(first, 3) == [f"early {i}" for i in range(3)]
    assert bodies(second, 3) == [f"late {i}" for i in range(3)]


def test_a_busy_program_gets_its_messages_after_it_goes_quiet(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """A program working for seconds (dead after 2 attempts here): the mail waits with the
    agent, which says why (Holds reach the sender as progress), nothing is delivered twice or
    becomes a dead letter, and it all lands after the work, in order. (Found against Claude
    Code, whose changing screen while it worked once cost its queued mail a redelivery.)"""
    config = tmp_path / "router.toml"
    config.write_text("[router]\nmax-attempts = 2\n")
    router = procs.router("--config", str(config))
    out = tmp_path / "pane.jsonl"
    pane = start_recorder(tmux_socket, out, busy=5.0)  # prints a line every 50 ms for 5 s
    procs.spawn(*agent_args("bob", pane, tmux_socket, procs.url, tmp_path))
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", f"after work {i}".encode(), notify=True) for i in range(3)]
        for ticket in tickets:
            ticket.wait("delivered", timeout=30)  # raises DeliveryError for a dead letter
        assert tickets[0].progress.startswith("deferred: ")  # what the agent said meanwhile
    assert bodies(out, 3) == [f"after work {i}" for i in range(3)]
    assert not [r for r in records(out) if "during_busy" in r], "pasted into a busy program"
    assert router_stats(router)["redelivered"] == 0  # held, so never sent again


def test_a_human_draft_is_never_overwritten(procs: Procs, tmux_socket: str, tmp_path: Path) -> None:
    """bash with a half-typed command: the message waits; once the draft is gone it lands
    (its envelope a comment) and runs."""
    procs.router()
    tmux = ["tmux", "-L", tmux_socket]
    pane = subprocess.run(
        [*tmux, "new-session", "-d", "-s", "sh", "-x", "120", "-P", "-F", "#{pane_id}"]
        + ["env PS1='zs$ ' bash --norc --noprofile"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip

    def screen() -> str:
        return subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", pane], capture_output=True, text=True
        ).stdout

    wait_for(lambda: "zs$" in screen(), 10, "the prompt")
    subprocess.run([*tmux, "send-keys", "-t", pane, "-l", "git commit -m 'half"], check=True)
    procs.spawn(*agent_args("bob", pane, tmux_socket, procs.url, tmp_path), "--profile", "shell")
    with Client("alice", router=procs.url) as alice:
        ticket = alice.send("bob", b"echo delivered-$((40+2))", notify=True)
        ticket.wait("accepted", timeout=10)
        with pytest.raises(ZsTimeoutError):
            ticket.wait("delivered", timeout=2)  # the draft is still there: nothing pasted
        assert screen().rstrip().endswith("zs$ git commit -m 'half")
        assert ticket.progress.startswith("refused_draft: a draft is typed")
        subprocess.run([*tmux, "send-keys", "-t", pane, "C-u"], check=True)  # the human gives up
        ticket.wait("delivered", timeout=30)
    wait_for(lambda: "\ndelivered-42" in screen(), 10, "the command's output")


def test_the_agent_s_own_hook_beats_screen_scraping(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    procs.router()
    out = tmp_path / "pane.jsonl"
    pane = start_recorder(tmux_socket, out)
    zs = [sys.executable, "-m", "zmqswarm.cli"]
    hook = [*zs, "hook", "--pane", pane, "-L", tmux_socket]
    subprocess.run([*hook, "busy"], check=True)  # e.g. from a UserPromptSubmit hook
    procs.spawn(*agent_args("bob", pane, tmux_socket, procs.url, tmp_path))
    with Client("alice", router=procs.url) as alice:
        ticket = alice.send("bob", b"when you are done", notify=True)
        with pytest.raises(ZsTimeoutError):
            ticket.wait("delivered", timeout=1.5)  # quiet screen, but the agent says busy
        subprocess.run([*hook, "idle"], check=True)  # e.g. from a Stop hook
        ticket.wait("delivered", timeout=30)
    assert bodies(out, 1) == ["when you are done"]


def test_a_dim_placeholder_is_not_taken_for_a_draft(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """Like an agent TUI's empty composer: the prompt line shows grey placeholder text. A
    profile with ignore-dim reads it (capture-pane -e) as empty and delivers."""
    procs.router()
    out = tmp_path / "pane.jsonl"
    pane = start_recorder(tmux_socket, out, placeholder="Try: fix the flaky test")
    profile = tmp_path / "tui.toml"
    profile.write_text("quiet = 0.1\nprompt = '^READY>(?: (?P<draft>.*))?$'\nignore-dim = true\n")
    args = agent_args("bob", pane, tmux_socket, procs.url, tmp_path)
    procs.spawn(*args, "--profile", str(profile))
    with Client("alice", router=procs.url) as alice:
        ticket = alice.send("bob", b"hello composer", notify=True)
        assert ticket.wait("delivered", timeout=15).note.startswith("submitted ")
    assert bodies(out, 1) == ["hello composer"]


RECORDER_PROFILE = Path(__file__).with_name("recorder.toml")


def test_an_enter_the_program_swallowed_is_pressed_again_never_the_paste(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """The program shows the paste in its input line and eats the first Enter after it (as
    TUIs that take an early Enter as part of the paste do): the agent sees its text still
    there and presses Enter once more. Submitted once, pasted once."""
    procs.router()
    out = tmp_path / "pane.jsonl"
    pane = start_recorder(tmux_socket, out, env="ZS_ECHO=1 ZS_SWALLOW=1")
    args = agent_args("bob", pane, tmux_socket, procs.url, tmp_path)
    procs.spawn(*args, "--profile", str(RECORDER_PROFILE))
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", f"line one\nstep {i}".encode(), notify=True) for i in range(3)]
        notes = [t.wait("delivered", timeout=20).note for t in tickets]
    assert all(n.startswith("submitted ") and n.endswith("enters=2") for n in notes), notes
    assert bodies(out, 3) == [f"line one\nstep {i}" for i in range(3)]


def test_a_large_body_goes_to_a_file_and_a_pointer_is_pasted(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    procs.router()
    out = tmp_path / "pane.jsonl"
    start_recorder(tmux_socket, out, session="big")
    # A target by name, not by id: the agent pins it to its %id at start.
    procs.spawn(*agent_args("bob", "big:0.0", tmux_socket, procs.url, tmp_path))
    body = ("0123456789abcdef" * 1250).encode()  # 20,000 bytes > the 16 KiB paste limit
    with Client("alice", router=procs.url) as alice:
        ticket = alice.send("bob", body, notify=True)
        ticket.wait("delivered", timeout=20)
    (pointer,) = bodies(out, 1)
    assert pointer.startswith("the message is 20000 bytes: read ")
    assert Path(pointer.rsplit(" ", 1)[1]).read_bytes() == body


def test_a_message_whose_ttl_passes_while_its_pane_is_dead_is_never_pasted(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    from zmqswarm import DeliveryError

    procs.router()
    out = tmp_path / "pane.jsonl"
    subprocess.run(["tmux", "-L", tmux_socket, "new-session", "-d", "-s", "idle"], check=True)
    args = agent_args("bob", "%0", tmux_socket, procs.url, tmp_path)
    procs.spawn(*[a for a in args if a not in ("--pane", "%0")])  # follows the tag: none yet
    with Client("alice", router=procs.url) as alice:
        stale = alice.send("bob", b"only until 1.5 s from now", notify=True, ttl=1.5)
        with pytest.raises(DeliveryError) as failed:
            stale.wait("delivered", timeout=15)
        assert failed.value.code == "expired"
        assert "held=dead:" in failed.value.reason  # the agent held it, then let it go
        pane = start_recorder(tmux_socket, out, session="late")
        zs = [sys.executable, "-m", "zmqswarm.cli"]
        subprocess.run([*zs, "tag", pane, "bob", "-L", tmux_socket], check=True)
        alice.send("bob", b"fresh", notify=True).wait("delivered", timeout=20)
    assert bodies(out, 1) == ["fresh"]


def test_a_stalled_agent_resumes_without_a_duplicate_paste(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    """SIGSTOP zs agent for longer than the router's liveness limit mid-stream, SIGCONT it:
    the router has taken its deliveries back and sends them again in a new session; the
    agent's inbox knows which it already handed over. Each message lands once, in order."""
    import os
    import time

    router = procs.router()
    out = tmp_path / "pane.jsonl"
    pane = start_recorder(tmux_socket, out)
    agent = procs.spawn(*agent_args("bob", pane, tmux_socket, procs.url, tmp_path))
    texts = [f"job {i}" for i in range(12)]
    with Client("alice", router=procs.url) as alice:
        tickets = [alice.send("bob", t.encode(), notify=True) for t in texts]
        wait_for(lambda: len(records(out)) >= 3, 30, "the first deliveries")
        os.kill(agent.pid, signal.SIGSTOP)
        time.sleep(4.0)  # the fault: frozen past 3 heartbeats, not a synchronisation
        os.kill(agent.pid, signal.SIGCONT)
        for ticket in tickets:
            ticket.wait("delivered", timeout=30)
    assert bodies(out, len(texts)) == texts
    assert router_stats(router)["redelivered"] > 0  # the stall did cost bob its session
