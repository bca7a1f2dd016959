"""One-shot queries (``zs peers``, ``zs dead``, ``zs monitor --once``): their errors."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
import zmq

from zmqswarm.errors import ConfigError, RouterUnavailableError
from zmqswarm.observe.query import list_dead, list_peers, snapshot


def assert_terminates(ctx: zmq.Context[zmq.Socket[bytes]]) -> None:
    """A context with a socket still open never terminates: so none was left behind."""
    term = threading.Thread(target=ctx.term, daemon=True)
    term.start()
    term.join(5)
    assert not term.is_alive(), "a socket was left open"


def test_a_malformed_url_is_a_config_error_and_leaves_no_socket() -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    for ask in (list_peers, list_dead, snapshot):
        with pytest.raises(ConfigError, match="cannot connect to 'garbage': Invalid argument"):
            ask("garbage", context=ctx)
    assert_terminates(ctx)


def test_no_answer_is_router_unavailable_naming_the_url(tmp_path: Path) -> None:
    url = f"ipc://{tmp_path}/nobody"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    start = time.monotonic()
    with pytest.raises(RouterUnavailableError) as raised:
        list_peers(url, timeout=0.2, context=ctx)
    assert time.monotonic() - start < 5
    assert re.fullmatch(
        rf"router at {re.escape(url)} did not answer within 0.2 s", str(raised.value)
    )
    assert raised.value.url == url
    assert_terminates(ctx)
