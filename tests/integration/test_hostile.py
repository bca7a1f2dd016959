"""The bad-input catalogue, a few rounds of it, against a real CURVE router process on tcp:
nothing hostile reaches a recipient, every reject is counted where the catalogue says, and a
legitimate client is served before, during and after (bench.hostile is the long version)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import zmq

from bench._catalogue import (
    FUZZ_CONNECTIONS,
    HOSTILE,
    VICTIM,
    FuzzPeer,
    RawPeer,
    held_inside,
    measure,
    run_cases,
)
from bench.hostile import keyring, keys_of
from zmqswarm import Client
from zmqswarm.observe import list_peers, snapshot

from ..helpers import Procs, poll_until, router_stats

pytestmark = pytest.mark.timeout(60)


def curve_router(procs: Procs, keys: Path) -> tuple[subprocess.Popen[str], str]:
    """A router on a free tcp port of 127.0.0.1 (its log says which), with CURVE."""
    config = keys / "router.toml"
    config.write_text("[router]\nmailbox-max-bytes = 1048576\n")
    router = procs.spawn(
        "-m", "zmqswarm.cli", "router", "--no-journal", "--config", str(config),
        "--bind", "tcp://127.0.0.1:*", "--curve-secret", str(keys / "router.key_secret"),
        "--allow", str(keys / "allow"), stdout=None,
    )  # fmt: skip
    assert router.stderr is not None
    for line in router.stderr:  # the first lines come at once; a dead router ends them
        found = re.search(r"listening on (tcp://[\d.]+:\d+)", line)
        if found:
            return router, found.group(1)
    raise AssertionError(f"the router did not start: {router.wait(10)}")


def test_the_catalogue_is_refused_counted_and_never_delivered(procs: Procs, tmp_path: Path) -> None:
    keys = keyring(tmp_path / "keys", pairs=2)
    router, url = curve_router(procs, keys)
    where = str(keys)
    ctx: zmq.Context[Any] = zmq.Context()
    queries = 0
    try:
        with (
            Client("s0", router=url, curve=keys_of(where, "s0")) as s0,
            Client(VICTIM, router=url, curve=keys_of(where, VICTIM)) as r0,
        ):
            s0.send(VICTIM, b"before").wait("accepted", 10)
            assert r0.recv(timeout=10).payload == b"before"
            fuzz = FuzzPeer(ctx, url, keys_of(where, "fuzz"))
            host, port = url[len("tcp://") :].rsplit(":", 1)
            raw = RawPeer(host, int(port), ctx, url, keys_of(where, "eve"))

            def fuzz_until() -> bool:
                fuzz.drain()
                return False

            def raw_until() -> bool:
                raw.poll()
                return False

            run_cases(fuzz.cases, fuzz.tally, 2000.0, fuzz_until, rounds=3)
            run_cases(raw.cases, raw.tally, 2000.0, raw_until, rounds=3)
            s0.send(VICTIM, b"during").wait("accepted", 10)
            raw.settle(15.0)  # the silent connections: closed after HANDSHAKE_IVL (5 s)
            assert raw.unclosed == 0
            s0.send(VICTIM, b"after").wait("accepted", 10)
            got = [r0.recv(timeout=10).payload for _ in range(2)]
            assert got == [b"during", b"after"]
            with pytest.raises(TimeoutError):
                r0.recv(timeout=0.5)  # and nothing else, hostile or not
            assert not any(p.startswith(HOSTILE) for p in got)
            fuzz.close()
            assert fuzz.unclosed == 0
        admin = keys_of(where, "s1")
        queued = {p.name: p.queued for p in list_peers(url, timeout=5, curve=admin)}
        queries += 1
        stats: dict[str, int] = {}

        def settled() -> bool:
            """Every connection closed but this Snapshot's own (whose opening is counted,
            and whose closing cannot be yet): the counters are final."""
            nonlocal queries, stats
            queries += 1
            stats = snapshot(url, timeout=5, curve=admin).stats
            made = 2 + FUZZ_CONNECTIONS + raw.tally.expected["connections_accepted"]
            made += fuzz.tally.expected["connections_accepted"] + queries
            return (stats["connections_accepted"], stats["connections_closed"]) == (made, made - 1)

        poll_until(settled, 10)  # else the comparison below says what is missing
    finally:
        ctx.term()
    expected = fuzz.tally.expected + raw.tally.expected
    legit = 2 + FUZZ_CONNECTIONS + queries  # s0, r0, the fuzz peer's, the queries
    expected["connections_accepted"] += legit
    expected["connections_closed"] += legit - 1  # the last Snapshot's
    expected["accepted"] += 3 + held_inside(queued)
    counted = {expr: measure(expr, stats, queued) for expr in expected}
    assert counted == dict(expected)
    assert set(fuzz.tally.injected) == {c.id for c in fuzz.cases}  # every case ran
    assert set(raw.tally.injected) == {c.id for c in raw.cases}
    assert queued.get(VICTIM, 0) == 0 and stats["delivered"] == 3
    assert router_stats(router)["bad_frames"] == stats["bad_frames"]  # and it stops cleanly
