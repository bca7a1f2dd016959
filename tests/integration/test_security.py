"""CURVE end to end, with a real router process: who gets in, under which names, what a
revocation cuts off, and which files only their user may read."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest
import zmq
from zmq.utils.monitor import recv_monitor_message

from zmqswarm import Client
from zmqswarm.errors import AccessDeniedError, RouterUnavailableError, ZsTimeoutError
from zmqswarm.keys import (
    ZAP_DOMAIN,
    ClientKeys,
    ServerKeys,
    client_keys,
    load_secret,
    new_keys,
    secure_server,
)
from zmqswarm.keys import trust as trust_key
from zmqswarm.observe import list_peers
from zmqswarm.protocol import PROTOCOL_VERSION, Code, Hello, Nack, decode, encode
from zmqswarm.router.auth import AllowList, Gatekeeper
from zmqswarm.transport import id_secret, routing_id

from ..helpers import Procs, router_stats, stop_router, wait_for

pytestmark = pytest.mark.timeout(60)


class Keyring(NamedTuple):
    dir: Path
    allow: Path

    def secret(self, name: str) -> Path:
        return self.dir / f"{name}.key_secret"

    def client(self, name: str) -> ClientKeys:
        keys = client_keys(self.secret(name), self.dir / "router.key")
        assert keys is not None
        return keys

    def env(self, name: str) -> dict[str, str]:
        return {
            "ZS_CURVE_SECRET": str(self.secret(name)),
            "ZS_ROUTER_KEY": str(self.dir / "router.key"),
        }


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    ring = Keyring(tmp_path / "keys", tmp_path / "keys" / "allow")
    for name in ("router", "alice", "bob", "eve"):
        new_keys(name, ring.dir)
    for name in ("alice", "bob"):  # eve's key is not let in
        trust_key(ring.dir / f"{name}.key", ring.allow)
    return ring


@pytest.fixture
def secured(procs: Procs, keyring: Keyring) -> subprocess.Popen[str]:
    return procs.router(
        "--no-journal",
        "--curve-secret",
        str(keyring.secret("router")),
        "--allow",
        str(keyring.allow),
    )


def refused_within(seconds: float, make: object) -> AccessDeniedError:
    start = time.monotonic()
    with pytest.raises(AccessDeniedError) as info:
        assert callable(make)
        with make() as client:
            client.send(client.name, b"x").wait("accepted", 10)
    assert time.monotonic() - start < seconds
    return info.value


def test_listed_keys_talk(procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]) -> None:
    with (
        Client("alice", router=procs.url, curve=keyring.client("alice")) as alice,
        Client("bob", router=procs.url, curve=keyring.client("bob")) as bob,
    ):
        alice.send("bob", b"over curve").wait("accepted", 10)
        assert bob.recv(timeout=10).payload == b"over curve"


def test_an_unknown_key_is_refused_at_once(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    error = refused_within(5, lambda: Client("eve", router=procs.url, curve=keyring.client("eve")))
    assert "allow list" in str(error)
    stats, log = stop_router(secured)
    assert stats["handshake_refused_key"] >= 1
    eve = keyring.client("eve").public.decode()[:12]
    assert log.count("refused a handshake") == 1 and eve in log, log  # once: rate-limited


def test_a_client_without_curve_is_refused(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    error = refused_within(5, lambda: Client("alice", router=procs.url))
    assert "CURVE" in str(error)


def test_a_wrong_router_key_never_gets_a_session(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    wrong = keyring.client("alice")._replace(server=keyring.client("bob").public)
    with pytest.raises(RouterUnavailableError):
        list_peers(procs.url, timeout=1.0, curve=wrong)
    assert router_stats(secured).get("handshake_failed_protocol", 0) >= 1


def test_a_key_may_not_use_another_name(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    make = lambda: Client("bob", router=procs.url, curve=keyring.client("alice"))  # noqa: E731
    assert "may not use the name 'bob'" in str(refused_within(5, make))
    with Client("alice.runner", router=procs.url, curve=keyring.client("alice")) as ok:
        ok.send("alice.runner", b"own name").wait("accepted", 10)
    assert router_stats(secured)["refused_not_allowed"] >= 1


def raw_dealer(
    ctx: zmq.Context[zmq.Socket[bytes]], url: str, keys: ClientKeys, rid: bytes
) -> zmq.Socket[bytes]:
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, rid)
    sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = keys
    sock.connect(url)
    return sock


def test_a_frame_claiming_another_sender_is_refused(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    """bob's key speaking under alice's routing id, and a Hello whose name is not its routing
    id's: both refused, and nothing reaches alice's mailbox or anyone else's."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        spoof = raw_dealer(ctx, procs.url, keyring.client("bob"), routing_id("alice", 0x77))
        spoof.send(encode(Hello(PROTOCOL_VERSION, "alice", 0x77, 16)))
        assert spoof.poll(5000)
        nack = decode(spoof.recv())
        assert isinstance(nack, Nack) and nack.code == Code.NOT_ALLOWED
        inside = raw_dealer(ctx, procs.url, keyring.client("bob"), routing_id("bob", 0x78))
        inside.send(encode(Hello(PROTOCOL_VERSION, "alice", 0x78, 16)))
        assert inside.poll(5000)
        nack = decode(inside.recv())
        assert isinstance(nack, Nack) and nack.code == Code.NOT_ALLOWED
        for sock in (spoof, inside):
            sock.close(0)
    finally:
        ctx.term()
    assert not list_peers(procs.url, timeout=5, curve=keyring.client("alice"))
    assert router_stats(secured)["refused_not_allowed"] == 2


def test_a_live_peers_routing_id_is_not_taken_by_another_key(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    """Any trusted key may learn a live peer's name and epoch (PeerList shows them). The
    router sets ROUTER_HANDOVER, so a connection under bob's id would take it over; but a
    CURVE peer's id ends in a secret: the thief's guess is an id of its own, and its Hello
    for bob is refused (not its key's name)."""
    with (
        Client("alice", router=procs.url, curve=keyring.client("alice")) as alice,
        Client("bob", router=procs.url, curve=keyring.client("bob")) as bob,
    ):
        bob.wait_ready(10)
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        try:
            thief = ctx.socket(zmq.DEALER)
            thief.setsockopt(zmq.LINGER, 100)
            thief.setsockopt(zmq.ROUTING_ID, routing_id("bob", bob.epoch))
            thief.curve_publickey, thief.curve_secretkey, thief.curve_serverkey = keyring.client(
                "alice"
            )
            up = thief.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
            thief.connect(procs.url)
            assert up.poll(5000), "the thief's handshake did not finish"
            thief.send(encode(Hello(PROTOCOL_VERSION, "bob", bob.epoch, 16)))
            thief.disable_monitor()
            up.close(0)
            thief.close()  # a dropped connection: the router probes every session
        finally:
            ctx.term()
        for i in range(3):
            alice.send("bob", b"%d" % i).wait("accepted", 10)
            assert bob.recv(timeout=10).payload == b"%d" % i
    stats = router_stats(secured)
    assert stats["disconnected"] == 0 and stats["redelivered"] == 0
    assert stats["refused_not_allowed"] == 1


def test_a_reconnect_takes_over_its_routing_id_from_a_connection_still_held(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reconnect that beats the router's heartbeat timeout on its old connection (played
    by a raw socket under the same id and key): the new connection takes the id over
    (ROUTER_HANDOVER), at once, and the old one gets nothing more."""
    epoch = 0x5EED
    monkeypatch.setattr("zmqswarm.client.base.new_epoch", lambda: epoch)
    keys = keyring.client("bob")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    rid = routing_id("bob", epoch, id_secret(keys.secret, "bob", epoch))  # the client's own
    old = raw_dealer(ctx, procs.url, keys, rid)
    try:
        old.send(encode(Hello(PROTOCOL_VERSION, "bob", epoch, 16)))
        assert old.poll(5000)  # its Welcome: the id is held
        old.recv_multipart()
        with Client("bob", router=procs.url, curve=keyring.client("bob")) as bob:
            bob.wait_ready(5)
            bob.send("bob", b"back").wait("accepted", 10)
            assert bob.recv(timeout=10).payload == b"back"
            assert not old.poll(200)  # nothing for the connection it replaced
    finally:
        old.close(0)
        ctx.term()


def test_a_revoked_key_is_cut_off_mid_stream(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    with (
        Client("alice", router=procs.url, curve=keyring.client("alice")) as alice,
        Client("bob", router=procs.url, curve=keyring.client("bob")) as bob,
    ):
        for i in range(100):
            alice.send("bob", b"%d" % i)
        got = [bob.recv(timeout=10).payload for _ in range(100)]
        assert got == [b"%d" % i for i in range(100)]

        def bob_acked_all() -> bool:  # else the revocation's closed connection drops acks
            bob.poll(0.05)  # a Client sends its held ack when called
            peers = list_peers(procs.url, timeout=5, curve=keyring.client("alice"))
            return any(p.name == "bob" and p.queued + p.inflight == 0 for p in peers)

        wait_for(bob_acked_all, 10, "bob's acks of all 100")
        (keyring.allow / "bob.key").unlink()
        secured.send_signal(signal.SIGHUP)
        with pytest.raises(AccessDeniedError, match="key 'bob' was revoked"):
            while True:  # what was already on its way may still come; then the refusal
                bob.recv(timeout=5)
        for i in range(100, 110):
            alice.send("bob", b"%d" % i).wait("accepted", 10)
        peers = {p.name: p for p in list_peers(procs.url, timeout=5, curve=keyring.client("alice"))}
        assert not peers["bob"].online and peers["bob"].queued == 10
    with pytest.raises(AccessDeniedError):  # and it does not come back in
        with Client("bob", router=procs.url, curve=keyring.client("bob")) as again:
            again.recv(timeout=5)
    stats = router_stats(secured)
    assert stats["nack_revoked"] >= 1 and stats["handshake_refused_key"] >= 1


def test_revoking_a_key_closes_its_connection_and_the_others_lose_nothing(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    """libzmq cannot close one peer's connection: on a revocation the router makes its
    sockets anew. The revoked key's connection closes and cannot open again; the others
    reconnect, and a stream across the revocation arrives once and in order."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        keys = keyring.client("bob")
        bob = raw_dealer(
            ctx, procs.url, keys, routing_id("bob", 0x66, id_secret(keys.secret, "bob", 0x66))
        )
        watch = bob.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        bob.send(encode(Hello(PROTOCOL_VERSION, "bob", 0x66, 16)))
        assert bob.poll(5000)  # its Welcome
        with (
            Client("alice", router=procs.url, curve=keyring.client("alice")) as alice,
            Client("alice.inbox", router=procs.url, curve=keyring.client("alice")) as inbox,
        ):
            inbox.wait_ready(10)
            for i in range(300):
                alice.send("alice.inbox", b"%d" % i)
                if i == 100:
                    (keyring.allow / "bob.key").unlink()
                    secured.send_signal(signal.SIGHUP)
            # What was on its way when the socket was made anew died with the old
            # connections: alice sends it again once she sees the new one, which a Client
            # does only inside its calls. So she is polled while the inbox reads.
            got: list[bytes] = []
            deadline = time.monotonic() + 20
            while len(got) < 300 and time.monotonic() < deadline:
                alice.poll()
                with contextlib.suppress(ZsTimeoutError):
                    got.append(inbox.recv(timeout=0.05).payload)
            assert got == [b"%d" % i for i in range(300)]
            seen: set[int] = set()
            deadline = time.monotonic() + 10
            while zmq.EVENT_HANDSHAKE_FAILED_AUTH not in seen and time.monotonic() < deadline:
                if watch.poll(100):
                    seen.add(recv_monitor_message(watch)["event"])
            assert seen == {zmq.EVENT_DISCONNECTED, zmq.EVENT_HANDSHAKE_FAILED_AUTH}
            assert alice.close(timeout=10) == []  # every message receipted
    finally:
        ctx.destroy(linger=0)


def test_a_key_replaced_under_the_same_name_cuts_off_the_old_key(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str], tmp_path: Path
) -> None:
    """Rotation: bob.key rewritten with a new key. The old key's live session ends (no
    signal needed), and the new key gets in under the same name."""
    with Client("bob", router=procs.url, curve=keyring.client("bob")) as old:
        old.wait_ready(10)
        fresh = tmp_path / "fresh"
        new_keys("bob", fresh)
        (keyring.allow / "bob.key").write_bytes((fresh / "bob.key").read_bytes())
        with pytest.raises(AccessDeniedError, match="revoked"):
            old.recv(timeout=5)
    rotated = client_keys(fresh / "bob.key_secret", keyring.dir / "router.key")
    with Client("bob", router=procs.url, curve=rotated) as new:
        new.send("bob", b"after the rotation").wait("accepted", 10)


@pytest.mark.solo
def test_zs_keys_revoke_cuts_a_live_key_off_at_once(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    with Client("bob", router=procs.url, curve=keyring.client("bob")) as bob:
        bob.wait_ready(10)
        revoke = [sys.executable, "-m", "zmqswarm.cli", "keys", "revoke", "bob"]
        revoke += ["--allow", str(keyring.allow), "--pid", str(secured.pid)]
        done = subprocess.run(revoke, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert not (keyring.allow / "bob.key").exists()
        started = time.monotonic()
        with pytest.raises(AccessDeniedError, match="key 'bob' was revoked"):
            bob.recv(timeout=5)
        assert time.monotonic() - started < 1.0  # the signal, not the once-a-second look


def test_a_removed_key_file_is_noticed_without_a_signal(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    with Client("bob", router=procs.url, curve=keyring.client("bob")) as bob:
        bob.wait_ready(10)
        (keyring.allow / "bob.key").unlink()
        with pytest.raises(AccessDeniedError, match="revoked"):
            bob.recv(timeout=5)


def curve_server(
    ctx: zmq.Context[zmq.Socket[bytes]], keyring: Keyring, where: Path
) -> tuple[zmq.Socket[bytes], str]:
    """A bare ROUTER secured as the router's are (ZAP domain enforced), bound on ipc."""
    server = ctx.socket(zmq.ROUTER)
    server.setsockopt(zmq.LINGER, 0)
    secure_server(server, ServerKeys(*load_secret(keyring.secret("router"))))
    url = f"ipc://{where}/curve-server"
    server.bind(url)
    return server, url


def test_with_no_zap_handler_nobody_gets_in(keyring: Keyring, tmp_path: Path) -> None:
    """The router's sockets enforce their ZAP domain: a CURVE server whose context has no ZAP
    handler (never started, or stopped) lets no key in, not even a listed one. libzmq's
    default would let every key in."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        server, url = curve_server(ctx, keyring, tmp_path)
        client = raw_dealer(ctx, url, keyring.client("alice"), b"alice/1")
        client.send(b"hello")
        assert not server.poll(1500)
        client.close(0)
        server.close(0)
    finally:
        ctx.term()


def test_an_authenticator_that_stops_lets_nobody_new_in(keyring: Keyring, tmp_path: Path) -> None:
    """The router's own ZAP handler (router/auth.py) lets alice in; then it stops (its
    socket closed, as when the router's loop dies): bob, listed too, never gets in, while
    alice's connection, authenticated before, still carries her frames."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    stats: dict[str, int] = {}
    try:
        gate = Gatekeeper(ctx, AllowList(keyring.allow), ZAP_DOMAIN, stats)
        server, url = curve_server(ctx, keyring, tmp_path)
        alice = raw_dealer(ctx, url, keyring.client("alice"), b"alice/1")
        alice.send(b"hello")
        wait_for(lambda: gate.answer() >= 0 and bool(server.poll(10)), 10, "alice let in")
        assert server.recv_multipart() == [b"alice/1", b"hello"] and stats["zap_allowed"] == 1
        gate.close()  # the authenticator stops
        bob = raw_dealer(ctx, url, keyring.client("bob"), b"bob/1")
        bob.send(b"hello")
        alice.send(b"still here")
        assert server.poll(5000) and server.recv_multipart() == [b"alice/1", b"still here"]
        assert not server.poll(1500)  # bob's handshake has nobody to ask: he never gets in
        for sock in (alice, bob, server):
            sock.close(0)
    finally:
        ctx.term()


def test_an_exposed_bind_needs_keys_or_insecure(procs: Procs) -> None:
    run = [sys.executable, "-m", "zmqswarm.cli", "router", "--no-journal", "-b", "tcp://0.0.0.0:0"]
    refused = subprocess.run(run, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 6
    assert "--curve-secret FILE --allow DIR" in refused.stderr and "--insecure" in refused.stderr


def test_the_cli_speaks_curve(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    zs = [sys.executable, "-m", "zmqswarm.cli"]
    env = {**os.environ, **keyring.env("alice")}
    sent = subprocess.run(
        [*zs, "send", "-r", procs.url, "--from", "alice", "alice.inbox", "hi"],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    flags = [
        "--curve-secret",
        str(keyring.secret("eve")),
        "--router-key",
        str(keyring.dir / "router.key"),
    ]
    denied = subprocess.run(
        [*zs, "send", "-r", procs.url, *flags, "--from", "eve", "alice", "hi"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert denied.returncode == 8 and "allow list" in denied.stderr
    peers = subprocess.run(
        [*zs, "peers", "-r", procs.url, "--json"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )
    assert peers.returncode == 0 and "alice.inbox" in peers.stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="zs agent runs tmux")
def test_zs_agent_takes_its_router_and_keys_from_the_config(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str], tmp_path: Path
) -> None:
    """The [client] table names the router and eve's keys; eve is not on the allow list."""
    config = tmp_path / "zs.toml"
    config.write_text(
        f'[client]\nrouter = "{procs.url}"\ncurve-secret = "{keyring.secret("eve")}"\n'
        f'router-key = "{keyring.dir / "router.key"}"\n'
    )
    agent = subprocess.run(
        [sys.executable, "-m", "zmqswarm.cli", "agent", "--name", "eve", "-L",
         f"zs-absent-{os.getpid()}", "--config", str(config)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert agent.returncode == 8 and "allow list" in agent.stderr, agent.stderr


# -- files only their user may read ----------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secret_files_and_their_directories_are_private(
    procs: Procs, keyring: Keyring, tmp_path: Path
) -> None:
    assert mode(keyring.dir) == 0o700 and mode(keyring.allow) == 0o700
    assert mode(keyring.secret("alice")) == 0o600
    assert mode(keyring.allow / "alice.key") == 0o600
    data = tmp_path / "journal"
    router = procs.router("--data-dir", str(data))
    spool, state = tmp_path / "spools" / "alice.spool", tmp_path / "spools" / "bob.state"
    spool.parent.mkdir(mode=0o700)
    with (
        Client("alice", router=procs.url, spool=spool) as alice,
        Client("bob", router=procs.url, state=state) as bob,
    ):
        alice.send("bob", b"kept").wait("accepted", 10)
        bob.recv(timeout=10)
        assert mode(spool) == 0o600 and mode(state) == 0o600
    assert mode(Path(procs.url[len("ipc://") :])) == 0o600
    assert mode(data) == 0o700
    files = [p for p in data.iterdir() if p.is_file()]
    assert files and all(mode(p) == 0o600 for p in files), {p.name: oct(mode(p)) for p in files}
    router_stats(router)


def test_a_loose_secret_key_is_refused(keyring: Keyring) -> None:
    keyring.secret("alice").chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        keyring.client("alice")


def test_a_journal_in_a_directory_others_may_write_or_behind_a_symlink_is_refused(
    procs: Procs, tmp_path: Path
) -> None:
    shared, real, link = tmp_path / "shared", tmp_path / "real", tmp_path / "link"
    shared.mkdir()
    shared.chmod(0o777)
    real.mkdir(mode=0o700)
    link.symlink_to(real)  # whoever may replace the link may swap the journal
    run = [sys.executable, "-m", "zmqswarm.cli", "router", "-b", procs.url, "--data-dir"]
    refused = subprocess.run([*run, str(shared)], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 6 and "chmod 700" in refused.stderr
    refused = subprocess.run([*run, str(link)], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 6 and "is a symlink" in refused.stderr, refused.stderr
