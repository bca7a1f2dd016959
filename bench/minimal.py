"""The minimal reliable path: the least Python that keeps the delivery contract's core.

A yardstick for bench.latency, between the raw floor (which forwards and promises nothing)
and zmqswarm: what a straight-line loop in plain Python and pyzmq costs when it keeps, per
message, what zmqswarm's hot path keeps at its simplest:

    sender     a seq, and the payload kept until a cumulative receipt; receipts are read
               without blocking after each send (the frame leaves first)
    router     a dedup watermark per sender, a mailbox of unacked messages per recipient
               (ROUTER_MANDATORY: a refused forward stays in it), a forward, one cumulative
               receipt per sender a turn, a cumulative ack that empties the mailbox
    recipient  a dedup watermark, the hand-over, one cumulative ack once nothing more waits

Left out, and so the price of zmqswarm's structure where it is on the hot path: sessions
and epochs, credit, resends and their timers, ttls, limits, a name taken over, notices,
observers, the connection monitor, tickets. Headers are bare msgpack (a tuple, an int).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import zmq

from bench._procs import ALL_CPUS, CTX, SINK, _pinned, _reap, endpoint, wait_path

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
_MORE = int(zmq.SNDMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


def router(url: str) -> None:
    """Forward Sends [to, seq] + payload as [dseq] + payload; b"" is a recipient's hello;
    an int is its cumulative ack. Runs until terminated."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.bind(url)
    recv, send, get = sock.recv, sock.send, sock.getsockopt
    mailboxes: dict[bytes, deque[tuple[int, bytes, bytes]]] = {}  # unacked (dseq, payload, from)
    last_dseq: dict[bytes, int] = {}
    accepted: dict[bytes, int] = {}  # sender -> its highest seq accepted
    owed: dict[bytes, int] = {}  # senders owed a receipt this turn

    def take(peer: bytes) -> None:
        header = recv()
        if not header:  # a recipient says hello: answer, so that it knows it is known
            mailboxes.setdefault(peer, deque())
            last_dseq.setdefault(peer, 0)
            send(peer, _MORE)
            send(b"")
            return
        decoded = _decode(header)
        if type(decoded) is int:  # an ack, cumulative
            mailbox = mailboxes[peer]
            while mailbox and mailbox[0][0] <= decoded:
                mailbox.popleft()
            return
        to, seq = decoded
        payload = recv()
        if seq <= accepted.get(peer, 0):  # a duplicate: receipted again, not forwarded
            owed[peer] = accepted[peer]
            return
        accepted[peer] = owed[peer] = seq
        dseq = last_dseq[to] = last_dseq[to] + 1
        mailboxes[to].append((dseq, payload, peer))
        try:
            send(to, _MORE)
            send(_encode(dseq), _MORE)
            send(payload)
        except zmq.ZMQError:
            pass  # it stays in the mailbox

    while True:
        take(recv())
        while int(get(_EVENTS)) & _POLLIN:
            take(recv())
        for peer, upto in owed.items():
            send(peer, _MORE)
            send(_encode(upto))
        owed.clear()


def sink_socket(url: str) -> tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes]]:
    """The recipient's DEALER, connected, its hello answered."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.ROUTING_ID, SINK)
    sock.connect(url)
    sock.send(b"")
    sock.recv()
    return ctx, sock


def receive(sock: zmq.Socket[bytes], n: int, hand_over: Callable[[bytes], None]) -> None:
    """Hand ``n`` messages over once each, in order; ack once nothing more waits."""
    recv, send, get = sock.recv, sock.send, sock.getsockopt
    handed = 0
    while handed < n:
        dseq = _decode(recv())
        payload = recv()
        if dseq <= handed:
            continue  # a duplicate
        handed = dseq
        hand_over(payload)
        if not int(get(_EVENTS)) & _POLLIN:
            send(_encode(handed))


class Sender:
    """The sending end: ``send(payload)`` to the sink, the payload kept until receipted."""

    def __init__(self, sock: zmq.Socket[bytes]) -> None:
        self.sock = sock
        self.seq = 0
        self.lowest = 1  # the lowest seq not yet receipted
        self.pending: dict[int, bytes] = {}

    def send(self, payload: bytes) -> None:
        seq = self.seq = self.seq + 1
        self.pending[seq] = payload
        self.sock.send(_encode((SINK, seq)), _MORE)
        self.sock.send(payload)
        self.take_receipts()

    def take_receipts(self) -> None:
        sock, pending = self.sock, self.pending
        while int(sock.getsockopt(_EVENTS)) & _POLLIN:
            upto = _decode(sock.recv())
            while self.lowest <= upto:
                del pending[self.lowest]
                self.lowest += 1


@contextmanager
def path(n: int, sink: Callable[..., None]) -> Iterator[tuple[Sender, Any, list[int]]]:
    """The router and ``sink(url, n, q)`` (which puts "ready", then its result, on ``q``),
    each a process of its own, and a Sender here. Yields (sender, q, the three pids)."""
    url = endpoint("minimal")
    q: Any = CTX.Queue()
    relay = CTX.Process(target=_pinned, args=(ALL_CPUS, router, url))
    relay.start()
    wait_path(url)
    consumer = CTX.Process(target=_pinned, args=(ALL_CPUS, sink, url, n, q))
    consumer.start()
    assert q.get(timeout=30) == "ready"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.ROUTING_ID, b"source")
    sock.connect(url)
    try:
        yield Sender(sock), q, [os.getpid(), relay.pid or 0, consumer.pid or 0]
    finally:
        _reap(consumer)
        relay.terminate()
        _reap(relay)
        sock.close(0)
        ctx.term()
