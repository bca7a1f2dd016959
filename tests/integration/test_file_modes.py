"""What holds messages is its user's alone: 0600 files in 0700 directories, whatever made
them, including the parents we make on the way (zmqswarm/private.py); a directory the user
named is theirs to set, and left as it is."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from zmqswarm import Client
from zmqswarm.agent.intents import IntentLog

from ..helpers import Procs, router_stats, wait_for
from ..tmux.conftest import tmux_socket  # noqa: F401 (the fixture: a private tmux server)
from ..tmux.test_agent import agent_args, bodies, start_recorder
from .test_cli import ENV, zs
from .test_security import mode

pytestmark = pytest.mark.timeout(60)

BIG = ("0123456789abcdef" * 1250).encode()  # 20,000 bytes > the agent's 16 KiB paste limit


def private(*paths: Path) -> dict[str, str]:
    """``paths`` whose mode is not 0700 (a directory) or 0600 (a file): {} when all are."""
    return {str(p): oct(mode(p)) for p in paths if mode(p) != (0o700 if p.is_dir() else 0o600)}


def start_router(procs: Procs, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`zs router` with ``args`` in ``env``; returns once it answers at its socket."""
    router = procs.spawn("-m", "zmqswarm.cli", "router", *args, env=env)
    sock = Path(procs.url[len("ipc://") :])
    wait_for(sock.exists, 10, "the router's socket")
    return router


# -- zs agent ----------------------------------------------------------------------------


def deliver_a_large_message(
    procs: Procs, socket: str, tmp: Path, env: dict[str, str], journal: Path | None
) -> Path:
    """A message over the paste limit, through `zs agent` into a private tmux pane (the agent
    with ``journal``, or its default): the file its body went to."""
    procs.router()
    out = tmp / "pane.jsonl"
    pane = start_recorder(socket, out)
    args = agent_args("bob", pane, socket, procs.url, tmp)
    cut = args.index("--journal")
    args[cut : cut + 2] = ["--journal", str(journal)] if journal else []
    procs.spawn(*args, env=env)
    with Client("alice", router=procs.url) as alice:
        alice.send("bob", BIG, notify=True).wait("delivered", timeout=20)
    (pointer,) = bodies(out, 1)
    body = Path(pointer.rsplit(" ", 1)[1])
    assert body.read_bytes() == BIG
    return body


def test_the_agent_keeps_a_large_body_and_its_journal_private_in_the_default_place(
    tmux_socket: str,  # noqa: F811 (first: torn down after the agent)
    procs: Procs,
    tmp_path: Path,
) -> None:
    """Failed before: the body file was 0644 (open(path, "w")), and $XDG_STATE_HOME, made
    on the way to $XDG_STATE_HOME/zmqswarm, 0755."""
    state = tmp_path / "state"  # missing: the agent makes it, and what is below it
    body = deliver_a_large_message(
        procs, tmux_socket, tmp_path, {"XDG_STATE_HOME": str(state)}, None
    )
    journal = state / "zmqswarm" / "agent-bob.journal"
    assert body.parent == state / "zmqswarm" / "bodies"
    assert not private(state, state / "zmqswarm", body.parent, body, journal)


def test_the_agent_tightens_a_loose_bodies_directory_and_leaves_the_users_own_alone(
    tmux_socket: str,  # noqa: F811 (first: torn down after the agent)
    procs: Procs,
    tmp_path: Path,
) -> None:
    """--journal in a directory of the user's (0755: theirs to set); its bodies directory,
    ours, left 0755 by an earlier run. Failed before: the bodies directory stayed 0755 and
    the body file was 0644."""
    work = tmp_path / "work"
    (work / "bodies").mkdir(parents=True)
    for d in (work, work / "bodies"):
        d.chmod(0o755)
    journal = work / "bob.journal"
    body = deliver_a_large_message(procs, tmux_socket, tmp_path, {}, journal)
    assert body.parent == work / "bodies"
    assert not private(work / "bodies", body, journal)
    assert mode(work) == 0o755


def test_the_intent_journal_is_private_after_compaction_and_in_what_it_makes(
    tmp_path: Path,
) -> None:
    """Failed before: the directories made on the way were 0755 (os.makedirs gives only the
    last one its mode), a compacted journal was 0644 (open(tmp, "w")), and a journal an
    earlier version left 0644 stayed so."""
    path = tmp_path / "made" / "on-the-way" / "bob.journal"
    log = IntentLog(str(path), compact_after=4, keep_done=2)
    made = private(path.parent.parent, path.parent, path)
    for i in range(6):
        log.intend(f"t{i}", "%1")
        log.done(f"t{i}")
    log.close()
    assert len(path.read_text().splitlines()) <= 4, "compacted"
    compacted = private(path)
    path.chmod(0o644)
    IntentLog(str(path)).close()
    assert (made, compacted, private(path)) == ({}, {}, {})


# -- zs send, Client ---------------------------------------------------------------------


def test_the_zs_send_spool_and_the_directories_made_for_it_are_private(
    procs: Procs, tmp_path: Path
) -> None:
    """Failed before: $XDG_STATE_HOME and $XDG_STATE_HOME/zmqswarm, made on the way to the
    spool directory, were 0755."""
    procs.router()
    state = tmp_path / "state"
    env = {**ENV, "XDG_STATE_HOME": str(state), "ZS_ROUTER": procs.url}
    sent = zs("send", "bob", "kept", "--spool", "--from", "runner", env=env)
    assert sent.returncode == 0, sent.stderr
    spool = state / "zmqswarm" / "spool" / "runner"
    lock = spool.with_name("runner.lock")
    assert not private(state, state / "zmqswarm", spool.parent, spool, lock)


def test_client_files_are_private_in_a_directory_the_user_chose(
    procs: Procs, tmp_path: Path
) -> None:
    """Passed before too (os.open with 0600), kept here: the files new, the umask 0 (the
    mode we give is all there is), the user's directory 0755 and left so."""
    procs.router()
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o755)
    mine.chmod(0o755)
    spool, state = mine / "alice.spool", mine / "bob.state"
    old = os.umask(0)
    try:
        with (
            Client("alice", router=procs.url, spool=spool) as alice,
            Client("bob", router=procs.url, state=state) as bob,
        ):
            alice.send("bob", b"kept").wait("accepted", 10)
            assert bob.recv(timeout=10).payload == b"kept"
    finally:
        os.umask(old)
    locks = [p.with_name(p.name + ".lock") for p in (spool, state)]
    assert not private(spool, state, *locks)
    assert mode(mine) == 0o755


def test_client_files_an_earlier_run_left_readable_are_tightened(
    procs: Procs, tmp_path: Path
) -> None:
    """A spool, a state and their locks left 0644 (an older zmqswarm, a `touch`): what the
    client then writes in them is its own. Failed before: all four stayed 0644."""
    procs.router()
    spool, state = tmp_path / "alice.spool", tmp_path / "bob.state"
    locks = [p.with_name(p.name + ".lock") for p in (spool, state)]
    for p in (spool, state, *locks):
        p.touch()
        p.chmod(0o644)
    with (
        Client("alice", router=procs.url, spool=spool) as alice,
        Client("bob", router=procs.url, state=state) as bob,
    ):
        assert not private(spool, state, *locks)
        alice.send("bob", b"kept").wait("accepted", 10)
        assert bob.recv(timeout=10).payload == b"kept"


# -- zs router -------------------------------------------------------------------------------


def test_the_router_makes_its_ipc_and_data_directories_private_on_the_way(
    procs: Procs, tmp_path: Path
) -> None:
    """An ipc endpoint two directories down, the journal in its default place. Failed
    before: the first ipc directory, $XDG_STATE_HOME, $XDG_STATE_HOME/zmqswarm and
    .../zmqswarm/router were 0755 (made on the way: os.makedirs, Path.mkdir(parents=True))."""
    state = tmp_path / "state"
    procs.url = f"ipc://{tmp_path}/ipc/a/router"
    sock = Path(procs.url[len("ipc://") :])
    router = start_router(procs, {**ENV, "XDG_STATE_HOME": str(state)}, "--bind", procs.url)
    (data,) = (state / "zmqswarm" / "router").iterdir()
    files = [p for p in data.iterdir() if p.is_file()]
    assert files
    ipc = [sock.parent.parent, sock.parent, sock, sock.with_name("router.lock")]
    assert not private(*ipc, state, state / "zmqswarm", data.parent, data, *files)
    router_stats(router)


def test_the_default_endpoints_directory_and_its_parents_made_on_the_way_are_private(
    procs: Procs, tmp_path: Path
) -> None:
    """No --bind: the socket in $XDG_RUNTIME_DIR/zmqswarm-<uid>. Failed before:
    $XDG_RUNTIME_DIR, missing, was made 0755 on the way."""
    run = tmp_path / "run"
    env = {**ENV, "XDG_RUNTIME_DIR": str(run), "XDG_STATE_HOME": str(tmp_path / "state")}
    procs.url = f"ipc://{run}/zmqswarm-{os.getuid()}/router"
    router = start_router(procs, env)
    sock = Path(procs.url[len("ipc://") :])
    assert not private(run, sock.parent, sock)
    router_stats(router)


def test_a_loose_default_endpoint_directory_of_ours_is_tightened(
    procs: Procs, tmp_path: Path
) -> None:
    """Passed before too: the default endpoint's directory went through private_dir."""
    run = tmp_path / "run"
    loose = run / f"zmqswarm-{os.getuid()}"
    loose.mkdir(parents=True)
    loose.chmod(0o755)
    env = {**ENV, "XDG_RUNTIME_DIR": str(run), "XDG_STATE_HOME": str(tmp_path / "state")}
    procs.url = f"ipc://{loose}/router"
    router_stats(start_router(procs, env))
    assert not private(loose)
