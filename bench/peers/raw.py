"""The ceiling: raw pyzmq, DEALER -> a Python ROUTER loop that forwards (fixed-arity recv and
send, no decode, no acks, nothing kept) -> DEALER, on loopback TCP. Variant "receipts": the
router also answers each message with an empty frame, and a sender keeps at most ``window``
messages unanswered (a publish acknowledgement, with nothing behind it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import zmq

from zmqswarm.bench.machine import free_port, wait_port
from zmqswarm.bench.spec import CTX, Broker, Spec

NAME = "raw pyzmq"
VARIANTS = ("", "receipts")


def _router(url: str, receipts: bool) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # block on a full pipe instead of dropping
    sock.bind(url)
    recv, send, more = sock.recv, sock.send, zmq.SNDMORE
    while True:
        sender = recv()
        to = recv()
        payload = recv()
        if not to:  # a recipient's hello: answered once it can be routed to
            send(sender, more)
            send(b"")
            continue
        send(to, more)
        send(payload)
        if receipts:
            send(sender, more)
            send(b"")


@contextmanager
def broker(spec: Spec, workdir: str) -> Iterator[Broker]:
    if spec.variant not in VARIANTS:
        raise ValueError(f"raw variants: {VARIANTS}, not {spec.variant!r}")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = CTX.Process(target=_router, args=(url, spec.variant == "receipts"), daemon=True)
    proc.start()
    try:
        wait_port(port, alive=proc.is_alive)
        yield Broker(url, [proc.pid or 0], f"pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}")
    finally:
        proc.kill()
        proc.join(5)


def prepare(spec: Spec, address: str) -> None:
    pass


def _rid(spec: Spec, role: str, index: int) -> bytes:
    return f"{spec.tag}-{role}{index}".encode()


class Sender:
    chunk = 256

    def __init__(self, spec: Spec, address: str, index: int) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.ROUTING_ID, _rid(spec, "s", index))
        self.sock.connect(address)
        self.receipts = spec.variant == "receipts"
        self.window = spec.window
        self.out = 0
        self.names = [_rid(spec, "r", r) for r in range(spec.recipients)]

    def publish(self, items: list[tuple[int, bytes]]) -> None:
        send, more, names = self.sock.send, zmq.SNDMORE, self.names
        sent = 0
        for r, payload in items:
            for to in names if r < 0 else (names[r],):
                send(to, more)
                send(payload)
                sent += 1
        if self.receipts:
            self.out += sent
            recv, poll = self.sock.recv, self.sock.poll
            while self.out > self.window or (self.out and poll(0)):
                recv()
                self.out -= 1

    def finish(self) -> int:
        while self.out and self.sock.poll(30_000):
            self.sock.recv()
            self.out -= 1
        return self.out

    def close(self) -> None:
        self.sock.close(linger=1000)
        self.ctx.term()


class Recipient:
    def __init__(self, spec: Spec, address: str, index: int) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.ROUTING_ID, _rid(spec, "r", index))
        self.sock.connect(address)
        self.sock.send(b"", zmq.SNDMORE)
        self.sock.send(b"")
        if not self.sock.poll(30_000):
            raise TimeoutError("the raw router never answered the hello")
        self.sock.recv()

    def take(self, timeout: float) -> list[bytes]:
        sock = self.sock
        if not sock.poll(int(timeout * 1000)):
            return []
        got = [sock.recv()]
        recv, flags = sock.recv, zmq.NOBLOCK
        try:
            for _ in range(255):
                got.append(recv(flags))
        except zmq.Again:
            pass
        return got

    def finish(self) -> None:
        pass

    def close(self) -> None:
        self.sock.close(linger=0)
        self.ctx.term()


class Idle:
    """A DEALER connected to the router, its hello answered; then nothing."""

    def __init__(self, spec: Spec, address: str, index: int) -> None:
        self.peer = Recipient(dataclasses.replace(spec, tag=f"{spec.tag}-idle"), address, index)

    def close(self) -> None:
        self.peer.close()
