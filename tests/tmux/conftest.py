"""A private tmux server per test (`tmux -L zs-test-<id>`), killed at teardown."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

TMUX = shutil.which("tmux")


@pytest.fixture
def tmux_socket() -> Iterator[str]:
    if TMUX is None:
        pytest.skip("tmux is not installed")
    name = f"zs-test-{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        subprocess.run([TMUX, "-L", name, "kill-server"], capture_output=True, check=False)
