"""A private tmux server per test (`tmux -L zs-test-<id>`), killed at teardown."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from ..helpers import Procs

TMUX = shutil.which("tmux")


@pytest.fixture
def tmux_socket() -> Iterator[str]:
    if TMUX is None:
        pytest.skip("tmux is not installed")
    name = f"zs-test-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        kill_server(TMUX, name)


def kill_server(tmux: str, name: str) -> None:
    """``kill-server``, then SIGKILL the server process too: a server waits for its clients
    to leave, and an orphaned control client of a killed agent sometimes never did (seen:
    about one leaked server per run of test_agent.py, before control clients died with their
    agent). Nothing waits here."""
    asked = [tmux, "-L", name, "display-message", "-p", "#{pid} #{socket_path}"]
    pid, _, path = (
        subprocess.run(asked, capture_output=True, text=True).stdout.strip().partition(" ")
    )
    subprocess.run([tmux, "-L", name, "kill-server"], capture_output=True, check=False)
    if pid.isdigit():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    if path.endswith(f"/{name}"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a server killed so cannot remove its socket itself


@pytest.fixture
def procs(tmux_socket: str, procs: Procs) -> Procs:
    """The processes of a tmux test (agents above all) are reaped before its tmux server is
    killed: set up after ``tmux_socket``, torn down before it. An agent still running when
    the server is asked to exit reattaches, and a server waits for its clients to leave."""
    return procs
