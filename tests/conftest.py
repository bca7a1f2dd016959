"""Fixtures shared by every test directory; the helpers they use live in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Procs


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test`` runs ``-n 2 --dist loadgroup``), the tmux tests run on
    one worker and every other test on the other: two streams, each in order, that mostly
    wait (on pastes, on fault timings), so that no two timing-sensitive tests of the same
    kind ever run at once."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        group = "tmux" if item.nodeid.startswith("tests/tmux/") else "sockets"
        item.add_marker(pytest.mark.xdist_group(group))


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
