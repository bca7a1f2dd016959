"""The identities a peer presents (its epoch and its routing id), and the size limit every
zmqswarm socket puts on what it takes in."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import zmq

from zmqswarm.protocol.access import name_of
from zmqswarm.protocol.codec import MAX_EPOCH
from zmqswarm.router import Router
from zmqswarm.transport import MAX_PARTS, id_secret, new_epoch, peer_limits, recv_parts, routing_id


def test_epochs_are_random_and_within_53_bits() -> None:
    epochs = [new_epoch() for _ in range(10_000)]
    assert MAX_EPOCH == 2**53 - 1
    assert all(1 <= e <= MAX_EPOCH for e in epochs)
    assert len(set(epochs)) == len(epochs)
    assert max(epochs).bit_length() == 53  # the whole range is used, not a narrower one


def test_routing_id_is_name_slash_lowercase_unpadded_hex() -> None:
    assert routing_id("alice", 0xABC) == b"alice/abc"
    assert routing_id("bob@host", 1) == b"bob@host/1"
    assert routing_id("a", MAX_EPOCH) == b"a/1fffffffffffff"


def test_a_curve_routing_id_ends_in_a_secret_and_keeps_its_name() -> None:
    """The secret is the same for the same key, name and epoch (a process resuming from its
    spool), and differs with any of them; only the key's holder can make it."""
    a, b = b"A" * 40, b"B" * 40
    assert re.fullmatch("[0-9a-f]{16}", id_secret(a, "bob", 7))
    assert id_secret(a, "bob", 7) == id_secret(a, "bob", 7)
    made = {id_secret(a, "bob", 7), id_secret(b, "bob", 7), id_secret(a, "bob", 8)}
    assert len(made | {id_secret(a, "bo", 7)}) == 4
    rid = routing_id("team/bob", 0xABC, "00ff")
    assert rid == b"team/bob/abc.00ff" and name_of(rid) == "team/bob"


def test_maxmsgsize_on_the_router_and_on_peers(tmp_path: Path) -> None:
    """libzmq drops a connection that announces a part over ZMQ_MAXMSGSIZE before it
    allocates it: the router at 4 x max_payload + 64 KiB, a peer at that or 64 MiB."""
    ctx: zmq.Context[Any] = zmq.Context()
    router = Router([f"ipc://{tmp_path}/r"], context=ctx, publish=[])
    try:
        limit = 4 * router.core.options.max_payload + (1 << 16)
        assert router.sock.getsockopt(zmq.MAXMSGSIZE) == limit
    finally:
        router.close()
    peer = ctx.socket(zmq.DEALER)
    peer_limits(peer, 1 << 20)
    assert peer.getsockopt(zmq.MAXMSGSIZE) == 64 << 20
    peer_limits(peer, 32 << 20)
    assert peer.getsockopt(zmq.MAXMSGSIZE) == 4 * (32 << 20) + (1 << 16)
    # A part over the limit never arrives: the connection is dropped.
    server = ctx.socket(zmq.ROUTER)
    server.setsockopt(zmq.ROUTER_MANDATORY, 1)
    server.bind(f"ipc://{tmp_path}/s")
    peer_limits(peer, 1 << 20)
    peer.setsockopt(zmq.ROUTING_ID, b"p")
    peer.setsockopt(zmq.RECONNECT_IVL, 20)
    monitor = peer.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    peer.connect(f"ipc://{tmp_path}/s")
    try:
        peer.send(b"hi")
        assert server.poll(5000) and server.recv_multipart() == [b"p", b"hi"]
        server.send_multipart([b"p", b"x" * ((64 << 20) + 1)])
        assert monitor.poll(5000), "the oversized part did not drop the connection"
        assert peer.poll(0) == 0  # and nothing of it was handed over
    finally:
        peer.disable_monitor()
        for sock in (monitor, peer, server):
            sock.close(0)
        ctx.term()


def test_a_frame_of_too_many_parts_is_cut_and_the_next_one_is_whole() -> None:
    """Any frame with more parts than a header and 1,024 payloads is invalid: a reader keeps
    one part past that (the core refuses it for its count) and drops the rest, so that ten
    thousand parts make no list of ten thousand (libzmq holds them all until the frame is
    whole: that part is libzmq's), and the frame after it comes whole."""
    ctx: zmq.Context[Any] = zmq.Context()
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    a.bind("inproc://parts")
    b.connect("inproc://parts")
    try:
        b.send_multipart([b"h", *[b"x"] * 10_000])
        b.send_multipart([b"h", *[b"y"] * 1024])
        cut = recv_parts(a)
        assert len(cut) == MAX_PARTS == 1026
        assert recv_parts(a) == [b"h", *[b"y"] * 1024]
    finally:
        a.close(0)
        b.close(0)
        ctx.term()
