"""Hostile inputs the catalogue's replay (test_hostile.py, bench.hostile) does not carry,
each against a real router process: a flood of subscriptions on the observers' feed (B29),
a tampered CURVE handshake (B05), connection churn (B28)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.utils.monitor

from bench._catalogue import curve_dealer
from bench.hostile import keyring, keys_of
from zmqswarm import Client, Observer
from zmqswarm.observe import snapshot

from ..helpers import Procs, router_stats, wait_for
from .test_hostile import curve_router
from .test_topics import payloads

pytestmark = pytest.mark.timeout(60)


def test_a_flood_of_subscriptions_is_bounded_counted_and_the_feed_goes_on(
    procs: Procs, tmp_path: Path
) -> None:
    """B29: an XSUB sends the feed 1,000 distinct topic prefixes and 50 messages that are no
    subscription. The router applies as many prefixes as it keeps topics (100 here) and
    counts the rest (libzmq alone would keep them all: 200,000 grew a router by 170 MiB);
    an observer of the state still follows it live, and one of a topic still follows it."""
    config = tmp_path / "router.toml"
    config.write_text("[router]\nmax-topics = 100\n")
    router = procs.router("--no-journal", "--config", str(config))
    ctx: zmq.Context[Any] = zmq.Context()
    flood = ctx.socket(zmq.XSUB)
    flood.setsockopt(zmq.LINGER, 0)
    flood.setsockopt(zmq.SNDHWM, 0)  # nothing dropped on our side: the counts are exact
    flood.connect(f"{procs.url}.pub")
    for i in range(1000):
        flood.send(b"\x01t%06d" % i)
    for _ in range(50):
        flood.send(b"\x07not a subscription")
    try:
        with Client("alice", router=procs.url) as alice:
            stats: dict[str, int] = {}

            def counted() -> bool:
                nonlocal stats
                alice.publish("build", b"%d" % time.monotonic_ns())  # the router publishes
                stats = snapshot(procs.url, timeout=5).stats
                got = stats.get("subscriptions_refused", 0), stats.get("subscriptions_bad", 0)
                return got == (900, 50)

            wait_for(counted, 20, "900 refused and 50 bad subscriptions")
            observer = Observer(procs.url)
            updates = observer.watch(tick=0.05)
            try:
                seq = next(updates).seq
                alice.set_state("after the flood")  # a change: an Update on the feed says it
                for state in updates:
                    if state.peers["alice"].state:
                        break
                assert state.seq > seq and observer.bad_updates == 0
            finally:
                updates.close()
            # A new prefix is refused while the flood holds them all: its observer still
            # follows the topic, through the ticks and a snapshot when one shows a gap.
            watcher = Observer(procs.url, state=False, topics="build")
            views = watcher.watch(tick=0.05)
            try:
                next(views)
                alice.publish("build", b"late")
                deadline = time.monotonic() + 10
                for _ in views:
                    if payloads(watcher.topics).get("build") == b"late":
                        break
                    assert time.monotonic() < deadline, "the topic observer never caught up"
            finally:
                views.close()
    finally:
        flood.close(0)
        ctx.term()
    assert router_stats(router)["subscriptions_refused"] == 900 + 1  # and the watcher's


class TamperingRelay:
    """A TCP relay between a CURVE client and the router that changes one byte of the
    client's INITIATE command (ZMTP 3.0: after the 64-byte greeting, frames of a flags
    byte, a 1- or 8-byte size, then the command's name-length byte, name and data): in the
    cookie (``where="cookie"``) or at the end of the encrypted box (``"box"``)."""

    def __init__(self, upstream: tuple[str, int], where: str) -> None:
        self.upstream, self.where = upstream, where
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        self.tampered = threading.Event()
        self.sockets = [self.listener]
        self.threads = [threading.Thread(target=self._serve, daemon=True)]
        self.threads[0].start()

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self.threads:
            thread.join(5)

    def _serve(self) -> None:
        with contextlib.suppress(OSError):  # closed before a client came
            client, _ = self.listener.accept()
            server = socket.create_connection(self.upstream)
            self.sockets += [client, server]
            back = threading.Thread(target=self._pipe, args=(server, client), daemon=True)
            self.threads.append(back)
            back.start()
            self._client_to_server(client, server)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def _client_to_server(self, client: socket.socket, server: socket.socket) -> None:
        def read(n: int, relay: bool = False) -> bytes:  # n bytes, or fewer at the end
            data = b""
            while len(data) < n and (more := client.recv(n - len(data))):
                data += more
                if relay:
                    server.sendall(more)
            return data

        with contextlib.suppress(OSError, IndexError):
            read(64, relay=True)  # the greeting, as it comes: each side waits for the other's
            while head := read(1):
                flags = head[0]
                size_bytes = read(8 if flags & 0x02 else 1)
                size = int.from_bytes(size_bytes, "big")
                body = bytearray(read(size))
                if flags & 0x04 and body[1 : 1 + body[0]] == b"INITIATE":
                    at = 1 + 8 + 10 if self.where == "cookie" else len(body) - 1
                    body[at] ^= 0x01
                    self.tampered.set()
                server.sendall(head + size_bytes + bytes(body))
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_WR)


@pytest.mark.parametrize("where", ["cookie", "box"])
def test_a_tampered_curve_initiate_ends_the_connection_before_any_key_check(
    procs: Procs, tmp_path: Path, where: str
) -> None:
    """B05: a trusted client's handshake, one byte of its INITIATE changed on the way (the
    cookie the router sealed, or the box with the client's long-term key): libzmq's CURVE
    check fails, the connection is closed and counted, the allow list is never asked, and
    nothing gets through."""
    keys = keyring(tmp_path / "keys", pairs=1)
    router, url = curve_router(procs, keys)
    host, port = url[len("tcp://") :].rsplit(":", 1)
    relay = TamperingRelay((host, int(port)), where)
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        dealer = curve_dealer(ctx, relay.url, keys_of(str(keys), "s0"), b"s0/1")
        monitor = dealer.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED)
        dealer.send_multipart([b"Hello", b"from the relay"])
        assert monitor.poll(10_000), "the router never closed the connection"
        event = zmq.utils.monitor.recv_monitor_message(monitor)
        assert event["event"] == zmq.EVENT_DISCONNECTED and relay.tampered.is_set()
        dealer.disable_monitor()
    finally:
        ctx.destroy(linger=0)
        relay.close()
    stats = router_stats(router)
    failed = stats.get("handshake_failed_protocol", 0) + stats.get("handshake_failed", 0)
    assert (stats["connections_accepted"], stats["connections_closed"], failed) == (1, 1, 1)
    assert stats.get("zap_allowed", 0) == 0 and stats.get("zap_refused", 0) == 0
    assert stats["accepted"] == 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0])


def test_connection_churn_leaks_nothing(procs: Procs, tmp_path: Path) -> None:
    """B28: 1,000 TCP connections opened and closed back to back (no greeting, then with a
    half greeting) against a CURVE router: every one counted, its descriptors all given back,
    its memory flat, and a legitimate client served after."""
    keys = keyring(tmp_path / "keys", pairs=1)
    router, url = curve_router(procs, keys)
    host, port = url[len("tcp://") :].rsplit(":", 1)
    with Client("s0", router=url, curve=keys_of(str(keys), "s0")) as s0:
        s0.send("s0", b"warm").wait("accepted", 10)
        assert s0.recv(timeout=10).payload == b"warm"
        fds, rss = _fds(router.pid), _rss_kib(router.pid)
        started = time.monotonic()
        for i in range(1000):
            with socket.create_connection((host, int(port)), timeout=5) as conn:
                if i % 2:
                    conn.sendall(b"\xff" + bytes(8) + b"\x7f")  # half a greeting, then gone
        took = time.monotonic() - started
        wait_for(lambda: _fds(router.pid) <= fds, 10, f"the router back to {fds} descriptors")
        assert _rss_kib(router.pid) - rss < 8 << 10, "the router's memory grew"
        s0.send("s0", b"after").wait("accepted", 10)
        assert s0.recv(timeout=10).payload == b"after"
    stats = router_stats(router)
    # s0's own connection too; its close may come after the router has stopped listening.
    assert stats["connections_accepted"] == 1000 + 1, took
    assert stats["connections_closed"] in (1000, 1000 + 1)
