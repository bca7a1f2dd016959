"""Two hosts, as far as the network can tell: the router in one network namespace, bound to a
tcp address off loopback, and every peer in another, joined by a veth pair (netns.py; made as
root, skipped with the reason where that cannot be done).

An address other hosts can reach needs CURVE: without keys the router refuses to start,
unless ``--insecure``. With keys, senders and recipients in the peers' namespace exchange a
few thousand messages, checked by tests/checker.py (none lost, none duplicated, each pair in
order); a stranger's key and no key at all get nothing through; and ``zs peers`` and ``zs
monitor`` work across the namespaces with keys only, the state feed (the router's PUB
socket) included.

Only the test's own processes live in the namespaces. The test itself, outside both, reaches
the router through an ipc endpoint it also binds (a path-named socket is reachable from any
network namespace), with keys like everyone else.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.checker import check, read_history, read_log
from zmqswarm.keys import ClientKeys, client_keys, new_keys, trust
from zmqswarm.observe import list_peers, snapshot

from ..helpers import PEER, Procs, last_line, router_stats, wait_for
from .netns import ROUTER_IP, Net

# signal, not the suite's thread method: a timeout raises here and the fixtures' teardown
# runs (processes reaped, namespaces removed) instead of the process exiting.
pytestmark = pytest.mark.timeout(120, method="signal")

TCP = f"tcp://{ROUTER_IP}:5555"
ZS = ("-m", "zmqswarm.cli")
SENDERS = ("s0", "s1", "s2")
RECIPIENTS = ("r0", "r1")
COUNT = 1500  # each sender, round-robin to the recipients: 4,500 messages in all
OBSERVER = "ops"
STRANGER = "eve"  # a key pair the router was never given


class Keyring(NamedTuple):
    dir: Path
    allow: Path

    def secret(self, name: str) -> Path:
        return self.dir / f"{name}.key_secret"

    def env(self, name: str) -> dict[str, str]:
        """What a process needs to reach the router as ``name``: $ZS_CURVE_SECRET and
        $ZS_ROUTER_KEY, as a deployment would set them."""
        return {"ZS_CURVE_SECRET": str(self.secret(name)), "ZS_ROUTER_KEY": str(self.router)}

    def flags(self, name: str) -> list[str]:
        return ["--curve-secret", str(self.secret(name)), "--router-key", str(self.router)]

    def client(self, name: str) -> ClientKeys:
        keys = client_keys(self.secret(name), self.router)
        assert keys is not None
        return keys

    @property
    def router(self) -> Path:
        return self.dir / "router.key"


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    ring = Keyring(tmp_path / "keys", tmp_path / "keys" / "allow")
    for name in ("router", *SENDERS, *RECIPIENTS, OBSERVER, STRANGER):
        new_keys(name, ring.dir)
    for name in (*SENDERS, *RECIPIENTS, OBSERVER):
        trust(ring.dir / f"{name}.key", ring.allow)
    return ring


def start_router(net: Net, procs: Procs, *extra: str) -> subprocess.Popen[str]:
    """``zs router`` in the router's namespace on TCP, and on an ipc endpoint the test uses
    from outside (bound last: once its file exists, the tcp endpoint is bound too)."""
    binds = ("--bind", TCP, "--bind", procs.url)
    router = procs.spawn(*ZS, "router", *binds, *extra, netns=net.router_ns)
    socket = Path(procs.url[len("ipc://") :])
    wait_for(lambda: socket.exists() or router.poll() is not None, 10, "the router's socket")
    assert router.poll() is None, router.communicate(timeout=10)[1]
    return router


def secured(net: Net, procs: Procs, keyring: Keyring, *extra: str) -> subprocess.Popen[str]:
    keys = ("--curve-secret", str(keyring.secret("router")), "--allow", str(keyring.allow))
    return start_router(net, procs, *keys, *extra)


def zs_in_peers(
    net: Net, procs: Procs, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A `zs` command run to its end in the peers' namespace."""
    proc = procs.spawn(*ZS, *args, env=env, netns=net.peer_ns)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# -- no keys, no start (unless told) --------------------------------------------------------


def test_an_exposed_router_refuses_to_start_without_keys_unless_insecure(
    net: Net, procs: Procs
) -> None:
    refused = procs.spawn(*ZS, "router", "--no-journal", "--bind", TCP, netns=net.router_ns)
    _, err = refused.communicate(timeout=30)
    assert refused.returncode == 6, err
    assert "reachable from other hosts" in err and "--curve-secret FILE --allow DIR" in err
    assert "--insecure" in err

    router = start_router(net, procs, "--no-journal", "--insecure")
    # Anyone who reaches it gets in: a peer on the other side, with no keys at all.
    sent = zs_in_peers(net, procs, "send", "-r", TCP, "--from", "anyone", "anyone.inbox", "hi")
    assert sent.returncode == 0, sent.stderr
    peers = zs_in_peers(net, procs, "peers", "-r", TCP, "--json")
    assert peers.returncode == 0, peers.stderr
    rows = {row["name"]: row for row in map(json.loads, peers.stdout.splitlines())}
    assert rows["anyone.inbox"]["queued"] == 1
    assert router_stats(router)["accepted"] == 1


# -- the core check, over tcp with CURVE ------------------------------------------------------


def test_senders_and_recipients_on_another_host_over_curve_lose_duplicate_and_reorder_nothing(
    net: Net, procs: Procs, keyring: Keyring, tmp_path: Path
) -> None:
    router = secured(net, procs, keyring, "--data-dir", str(tmp_path / "journal"))
    logs = {name: tmp_path / f"{name}.log" for name in RECIPIENTS}
    done = tmp_path / "done"

    def peer(role: str, name: str, *args: str) -> subprocess.Popen[str]:
        """peer.py ROLE as ``name``, in the peers' namespace, with ``name``'s keys."""
        return procs.spawn(PEER, role, name, TCP, *args, env=keyring.env(name), netns=net.peer_ns)

    takers = {
        name: peer("take", name, str(logs[name]), "--until", str(done)) for name in RECIPIENTS
    }
    histories = {name: tmp_path / f"{name}.history" for name in SENDERS}
    to = ",".join(RECIPIENTS)
    feeders = [peer("feed", name, str(COUNT), to, str(histories[name])) for name in SENDERS]
    total = len(SENDERS) * COUNT

    def handed() -> int:
        return sum(len(read_log(path)) for path in logs.values())

    for feeder in feeders:
        assert last_line(feeder, 90) == "DONE"  # every message receipted
    wait_for(lambda: handed() >= total, 30, f"{total} messages handed over")

    # While the recipients are still connected: the observers' view, from the peers' side.
    peers = zs_in_peers(net, procs, "peers", "-r", TCP, "--json", env=keyring.env(OBSERVER))
    assert peers.returncode == 0, peers.stderr
    rows = {row["name"]: row for row in map(json.loads, peers.stdout.splitlines())}
    for name in RECIPIENTS:
        assert rows[name]["online"], rows
    once = zs_in_peers(
        net, procs, "monitor", "-r", TCP, "--once", "--json", *keyring.flags(OBSERVER)
    )
    assert once.returncode == 0, once.stderr
    state = json.loads(once.stdout)
    assert state["stats"]["accepted"] == total
    assert {row["name"] for row in state["peers"]} >= set(RECIPIENTS)
    follow_the_feed(net, procs, keyring)

    done.touch()
    for name, taker in takers.items():
        assert last_line(taker, 30) == f"DONE {total // len(RECIPIENTS)}", name
    stats = router_stats(router)

    report = check(
        [read_history(path) for path in histories.values()],
        {name: read_log(path) for name, path in logs.items()},
    )
    print(f"\n{report}; router {stats}")  # noqa: T201 - the report's numbers (pytest -s)
    assert report.ok, str(report)
    assert report.attempted == report.receipted == report.handed == total
    assert report.unknown == 0 and report.refused == 0
    assert stats["accepted"] == stats["acked"] == total
    assert stats.get("handshake_refused_key", 0) == 0  # everyone here had a listed key


def follow_the_feed(net: Net, procs: Procs, keyring: Keyring) -> None:
    """`zs monitor --json` (live, from the PUB feed) with keys: Updates keep coming and the
    router never looks silent."""
    monitor = procs.spawn(
        *ZS, "monitor", "-r", TCP, "--json", env=keyring.env(OBSERVER), netns=net.peer_ns
    )
    lines: queue.Queue[str] = queue.Queue()
    assert monitor.stdout is not None
    stdout = monitor.stdout

    def read() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    first = json.loads(lines.get(timeout=20))  # the Snapshot
    seen = [first]
    while len(seen) < 3:  # two Updates after it (one a second at least: the feed's heartbeat)
        seen.append(json.loads(lines.get(timeout=10)))
    monitor.kill()
    seqs = [s["seq"] for s in seen]  # a line per change: of the state, or of the topics
    assert seqs == sorted(seqs) and len(set(seqs)) >= 2, seen
    assert not any(s["silent"] for s in seen), seen


# -- strangers ------------------------------------------------------------------------------

CLIENT = """
import sys
from zmqswarm import Client
from zmqswarm.errors import AccessDeniedError
name, url, to = sys.argv[1:4]
try:
    with Client(name, router=url) as client:
        client.send(to, b"let me in").wait("accepted", 10)
except AccessDeniedError as exc:
    print(f"DENIED {exc}", flush=True)
else:
    print("ACCEPTED", flush=True)
"""

SUBSCRIBERS = """
import sys, time, zmq
from zmqswarm.keys import client_keys, secure_client
from zmqswarm.protocol import Update, decode
url, want = sys.argv[1], int(sys.argv[2])
ctx = zmq.Context()
def subscriber(keys):
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SUBSCRIBE, b"")
    secure_client(sock, keys)
    sock.connect(url)
    return sock
bare = subscriber(None)  # first: it has been trying at least as long as the other
keyed = subscriber(client_keys())  # $ZS_CURVE_SECRET, $ZS_ROUTER_KEY
got = {bare: 0, keyed: 0}
poller = zmq.Poller()
for sock in got:
    poller.register(sock, zmq.POLLIN)
deadline = time.monotonic() + 20
while got[keyed] < want and time.monotonic() < deadline:
    for sock, _ in poller.poll(100):
        parts = sock.recv_multipart()
        if len(parts) == 1:  # an Update (topic values and ticks come in several parts)
            assert isinstance(decode(parts[0]), Update)
            got[sock] += 1
print(f"keyed {got[keyed]} bare {got[bare]}", flush=True)
"""


def test_a_stranger_and_a_keyless_peer_get_nothing_through_nor_see_anything(
    net: Net, procs: Procs, keyring: Keyring
) -> None:
    router = secured(net, procs, keyring, "--no-journal")
    eve, none = keyring.env(STRANGER), {"ZS_CURVE_SECRET": "", "ZS_ROUTER_KEY": ""}

    # Sending, by the library (AccessDeniedError) and by the CLI (exit 8).
    for who, env in ((STRANGER, eve), ("r0", none)):
        client = procs.spawn("-c", CLIENT, who, TCP, "r0", env=env, netns=net.peer_ns)
        out, err = client.communicate(timeout=60)
        assert out.startswith("DENIED "), (who, out, err)
    denied = zs_in_peers(net, procs, "send", "-r", TCP, "--from", STRANGER, "r0", "hi", env=eve)
    assert denied.returncode == 8 and "allow list" in denied.stderr, denied.stderr
    keyless = zs_in_peers(net, procs, "send", "-r", TCP, "--from", "r0", "r0", "hi", env=none)
    assert keyless.returncode == 8 and "CURVE" in keyless.stderr, keyless.stderr
    # ...while a listed key from the same namespace gets through: the network is not why.
    sent = zs_in_peers(
        net, procs, "send", "-r", TCP, "--from", "s0", "r1", "hi", env=keyring.env("s0")
    )
    assert sent.returncode == 0, sent.stderr

    # Observing: no snapshot, no peer list, without a listed key (exit 8, the test below).
    for env in (eve, none):
        for args in (("peers", "--json"), ("monitor", "--once", "--json")):
            seen = zs_in_peers(net, procs, *args, "-r", TCP, "--timeout", "2", env=env)
            assert seen.returncode != 0 and not seen.stdout, (args, seen.stdout, seen.stderr)
    # The state feed: a SUB with a listed key gets Updates; a bare one, connected first, none.
    feed = snapshot(procs.url, timeout=5, curve=keyring.client(OBSERVER)).publish
    assert len(feed) == 2 and any(url.startswith(f"tcp://{ROUTER_IP}:") for url in feed), feed
    tcp_feed = next(url for url in feed if url.startswith("tcp://"))
    subs = procs.spawn(
        "-c", SUBSCRIBERS, tcp_feed, "3", env=keyring.env(OBSERVER), netns=net.peer_ns
    )
    out, err = subs.communicate(timeout=60)
    assert out.strip() == "keyed 3 bare 0", (out, err)

    rows = {p.name: p for p in list_peers(procs.url, timeout=5, curve=keyring.client(OBSERVER))}
    assert "r0" not in rows, rows  # nothing reached r0's mailbox
    assert rows["r1"].queued == 1
    stats = router_stats(router)
    print(f"\nrouter {stats}")  # noqa: T201 - the report's numbers (pytest -s)
    assert stats["accepted"] == 1
    assert stats["handshake_refused_key"] >= 4  # eve: her client, zs send, peers, monitor


def test_an_observer_with_a_refused_key_is_told_so_at_once(
    net: Net, procs: Procs, keyring: Keyring
) -> None:
    secured(net, procs, keyring, "--no-journal")
    seen = zs_in_peers(net, procs, "peers", "-r", TCP, "--timeout", "3", *keyring.flags(STRANGER))
    assert seen.returncode == 8 and "allow list" in seen.stderr, seen.stderr
