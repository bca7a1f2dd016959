"""Garbage on a real socket: refused with a Nack, counted, and everyone else keeps going."""

from __future__ import annotations

import msgspec
import pytest
import zmq

from zmqswarm import Client, ClientOptions, NameTakenError
from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    Code,
    Deliver,
    DeliverItem,
    Hello,
    Nack,
    Send,
    SendItem,
    decode,
    encode,
)

from ..helpers import Procs


def nack_codes(sock: zmq.Socket[bytes], n: int) -> list[int]:
    codes = []
    for _ in range(n):
        assert sock.poll(5000), "no answer from the router"
        frame = decode(sock.recv_multipart()[0])
        assert isinstance(frame, Nack)
        codes.append(frame.code)
    return codes


def test_garbage_is_nacked_and_the_router_keeps_serving(procs: Procs) -> None:
    router = procs.router()
    ctx = zmq.Context()
    evil = ctx.socket(zmq.DEALER)
    evil.setsockopt(zmq.LINGER, 0)
    evil.connect(procs.url)
    try:
        with Client("alice", router=procs.url) as alice, Client("bob", router=procs.url) as bob:
            alice.send("bob", b"before").wait("accepted", timeout=10)
            evil.send_multipart([encode(Hello(PROTOCOL_VERSION, "mallory", 1, 10, False, 1))])
            assert evil.poll(5000)
            evil.recv_multipart()  # Welcome
            garbage = [
                [b"\xc1 not msgpack"],
                [b"\x93\x07"],  # truncated header
                [msgspec.msgpack.encode([42, "a kind from the future"])],
                [encode(Send(1, [SendItem(1, "bob")]))],  # its payload part is missing
                [encode(Deliver(1, [DeliverItem(1, "alice", 1, 1)])), b"forged sender"],
                [encode(Send(1, [SendItem(1, "no such name!")])), b"x"],
                [encode(Send(1, [SendItem(2, "bob")])), b"x" * (2 << 20)],  # over max_payload
                [encode(Hello(PROTOCOL_VERSION + 7, "mallory", 2))],
            ]
            for parts in garbage:
                evil.send_multipart(parts)
            assert nack_codes(evil, len(garbage)) == [
                Code.BAD_FRAME,
                Code.BAD_FRAME,
                Code.UNKNOWN_KIND,
                Code.BAD_FRAME,
                Code.BAD_FRAME,
                Code.INVALID_NAME,
                Code.TOO_LARGE,
                Code.BAD_VERSION,
            ]
            # A frame claiming a live peer's name gets NAME_TAKEN, not alice's mail.
            evil2 = ctx.socket(zmq.DEALER)
            evil2.setsockopt(zmq.LINGER, 0)
            evil2.connect(procs.url)
            evil2.send_multipart([encode(Hello(PROTOCOL_VERSION, "alice", 99, 10, False, 1))])
            assert nack_codes(evil2, 1) == [Code.NAME_TAKEN]
            evil2.close()
            # Everyone else is still served, in order.
            alice.send("bob", b"after").wait("accepted", timeout=10)
            assert [bob.recv(timeout=10).payload for _ in range(2)] == [b"before", b"after"]
        assert router.poll() is None, "the router died"
    finally:
        evil.close()
        ctx.term()


def test_a_second_client_with_a_live_name_is_refused(procs: Procs) -> None:
    procs.router()
    fast = ClientOptions(heartbeat=0.2)
    with Client("carol", router=procs.url, options=fast) as carol:
        carol.send("carol", b"x").wait("accepted", timeout=10)
        impostor = Client("carol", router=procs.url, options=fast)
        try:
            with pytest.raises(NameTakenError, match="held by a live peer"):
                impostor.wait_ready(10)
            with pytest.raises(NameTakenError, match="held by a live peer"):
                impostor.send("bob", b"y")
        finally:
            impostor.close(timeout=0)
        carol.send("carol", b"still mine").wait("accepted", timeout=10)
