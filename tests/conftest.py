"""Fixtures shared by every test directory; the helpers they use live in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .helpers import Procs


def stream_of(nodeid: str) -> str:
    """The stream a test runs in under ``make test``: the tmux tests, or the others."""
    return "tmux" if nodeid.startswith("tests/tmux/") else "sockets"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under pytest-xdist (``make test`` runs ``-n 2``), the tmux tests run on one worker and
    every other test on the other: two streams, each in order, that mostly wait (on pastes,
    on fault timings), so that no two tests of the same stream ever run at once; the tests
    marked ``solo`` (a time budget asserted) run after both, alone. A scheduler
    of our own, not ``xdist_group`` marks, which pytest 9.2 no longer applies (xdist #1386)."""
    from xdist.scheduler import LoadScopeScheduling

    class TwoStreams(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
        def _split_scope(self, nodeid: str) -> str:
            return stream_of(nodeid)

    return TwoStreams(config, log)


@pytest.fixture(autouse=True, scope="session")
def private_state_home() -> Iterator[None]:
    """Routers started by tests keep their journals in a directory the session removes, not
    in the user's $XDG_STATE_HOME."""
    home = tempfile.mkdtemp(prefix="zs-state-")
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = home
    try:
        yield
    finally:
        if before is None:
            del os.environ["XDG_STATE_HOME"]
        else:
            os.environ["XDG_STATE_HOME"] = before
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.reap()
