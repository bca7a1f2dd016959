"""Fixtures shared by every test directory; the helpers they use live in tests/helpers.py."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import Procs


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
