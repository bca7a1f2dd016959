"""One-shot questions to a router, for tools (``zs dead``, ``zs peers``): a plain DEALER
speaking the documented protocol, no I/O thread, no resends. A question that gets no answer
within the timeout raises RouterUnavailableError (naming the URL), and asking again is always
safe; a malformed URL raises ConfigError and leaves no socket behind.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import zmq

from zmqswarm.client.tickets import TicketId
from zmqswarm.errors import ConfigError, RouterUnavailableError
from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    Bye,
    Code,
    DeadList,
    Frame,
    Hello,
    ListDead,
    ListPeers,
    Nack,
    Observe,
    PeerItem,
    PeerList,
    Snapshot,
    Welcome,
    decode,
    encode,
)
from zmqswarm.transport import (
    new_epoch,
    peer_keys,
    peer_limits,
    recv_parts,
    resolve_router_url,
    routing_id,
)

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

__all__ = ["DeadLetters", "DeadMessage", "list_dead", "list_peers", "snapshot"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class DeadMessage:
    """A message the router gave up on: its recipient, ticket, why, how long ago, payload."""

    id: int
    to: str
    ticket: TicketId
    reason: str  # the Code's name: expired, max_attempts...
    age: float  # seconds
    payload: bytes


@dataclass(frozen=True, slots=True)
class DeadLetters:
    messages: list[DeadMessage]
    total: int  # held by the router now
    dropped: int  # forgotten for room since it started


def list_dead(
    router: str | None = None,
    *,
    after: int = 0,
    limit: int = 100,
    drop_upto: int = 0,
    timeout: float = 5.0,
    context: zmq.Context[zmq.Socket[bytes]] | None = None,
    curve: ClientKeys | None = None,
) -> DeadLetters:
    """The router's dead letters with id > ``after`` (at most ``limit``), after it forgot
    those with id ≤ ``drop_upto``."""
    answer, payloads = _ask(
        router, ListDead(after, limit, drop_upto), DeadList, timeout, context, curve
    )
    messages = [
        DeadMessage(
            item.id,
            item.to,
            TicketId(item.sender, item.epoch, item.seq),
            _code_name(item.code),
            item.age_ms / 1000,
            payload,
        )
        for item, payload in zip(answer.items, payloads, strict=True)
    ]
    return DeadLetters(messages, answer.total, answer.dropped)


def list_peers(
    router: str | None = None,
    *,
    timeout: float = 5.0,
    context: zmq.Context[zmq.Socket[bytes]] | None = None,
    curve: ClientKeys | None = None,
) -> list[PeerItem]:
    """Who is connected (receiving), and how much mail waits for each name."""
    answer, _ = _ask(router, ListPeers(), PeerList, timeout, context, curve)
    return answer.items


def snapshot(
    router: str | None = None,
    *,
    timeout: float = 5.0,
    context: zmq.Context[zmq.Socket[bytes]] | None = None,
    curve: ClientKeys | None = None,
) -> Snapshot:
    """What observers watch, now: rows, counters, and the PUB endpoints Updates come on."""
    answer, _ = _ask(router, Observe(), Snapshot, timeout, context, curve)
    return answer


def _ask(
    router: str | None,
    question: Frame,
    kind: type[T],
    timeout: float,
    context: zmq.Context[zmq.Socket[bytes]] | None,
    curve: ClientKeys | None = None,
) -> tuple[T, list[bytes]]:
    """Open a send-only session, ask one question, return the answer and its payload parts."""
    url = resolve_router_url(router)
    keys = peer_keys(curve)
    name, epoch = f"zs-admin-{os.getpid()}", new_epoch()
    ctx = context or zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.LINGER, 200)
        sock.setsockopt(zmq.ROUTING_ID, routing_id(name, epoch))
        peer_limits(sock, 1 << 20)
        if keys is not None:
            from zmqswarm.keys import secure_client

            secure_client(sock, keys)
        try:
            sock.connect(url)
        except zmq.ZMQError as exc:
            raise ConfigError(f"cannot connect to {url!r}: {exc.strerror}") from None
        deadline = time.monotonic() + timeout
        sock.send(encode(Hello(PROTOCOL_VERSION, name, epoch, 1, False, 1, True)))
        _answer(sock, Welcome, deadline, url, timeout)
        sock.send(encode(question))
        answer = _answer(sock, kind, deadline, url, timeout)
        sock.send(encode(Bye()))
    finally:
        sock.close()
    return answer


def _answer(
    sock: zmq.Socket[bytes], kind: type[T], deadline: float, url: str, timeout: float
) -> tuple[T, list[bytes]]:
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(int(left * 1000) + 1):
            raise RouterUnavailableError(
                f"router at {url} did not answer within {timeout} s", url=url
            )
        parts = recv_parts(sock)
        frame = decode(parts[0])
        if isinstance(frame, kind):
            return frame, parts[1:]
        if isinstance(frame, Nack) and frame.seq == 0:
            raise RouterUnavailableError(f"{_code_name(frame.code)}: {frame.reason}", url=url)
        # Heartbeats and anything else: not the answer


def _code_name(code: int) -> str:
    try:
        return Code(code).name.lower()
    except ValueError:
        return f"code {code}"
