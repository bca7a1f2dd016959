"""Fixtures of the integration tests (the shared ones are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .netns import Net, namespaces


@pytest.fixture
def net() -> Iterator[Net]:
    """The router's and the peers' network namespaces (netns.py), removed at teardown. Ask
    for it before ``procs``: the processes inside are then reaped before the namespaces go."""
    with namespaces() as ns:
        yield ns
