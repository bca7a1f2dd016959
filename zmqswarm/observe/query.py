"""One-shot questions to a router, for tools (``zs dead``, ``zs peers``): a plain DEALER
speaking the documented protocol, no I/O thread, no resends. A question that gets no answer
within the timeout raises RouterUnavailableError (naming the URL), and asking again is always
safe; a malformed URL raises ConfigError and leaves no socket behind.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import zmq

from zmqswarm.client.tickets import TicketId
from zmqswarm.errors import AccessDeniedError, ConfigError, RouterUnavailableError
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
from zmqswarm.protocol.handshakes import Handshakes
from zmqswarm.transport import (
    LINK_EVENTS,
    id_secret,
    link_events,
    new_epoch,
    peer_keys,
    peer_limits,
    recv_parts,
    resolve_router_url,
    routing_id,
)

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

__all__ = [
    "AdminSession",
    "DeadLetters",
    "DeadMessage",
    "list_dead",
    "list_peers",
    "snapshot",
]

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
    with AdminSession(router, timeout=timeout, context=context, curve=curve) as session:
        return session.ask(question, kind)


class AdminSession:
    """A send-only session for questions (observers ask several in a row): the Hello leaves
    at once, the Welcome is awaited with the first answer, a Bye leaves at ``close()``. Every
    answer must come before ``timeout`` seconds from the start have passed."""

    def __init__(
        self,
        router: str | None,
        *,
        timeout: float,
        context: zmq.Context[Any] | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self.url = url = resolve_router_url(router)
        self.timeout = timeout
        keys = peer_keys(curve)
        name, epoch = f"zs-admin-{os.getpid()}", new_epoch()
        ctx = context or zmq.Context.instance()
        self.sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
        try:
            self.sock.setsockopt(zmq.LINGER, 200)
            secret = id_secret(keys.secret, name, epoch) if keys is not None else ""
            self.sock.setsockopt(zmq.ROUTING_ID, routing_id(name, epoch, secret))
            peer_limits(self.sock, 1 << 20)
            if keys is not None:
                from zmqswarm.keys import secure_client

                secure_client(self.sock, keys)
            # Says whether the router refused us, rather than letting us wait out the timeout.
            self.monitor: zmq.Socket[bytes] = self.sock.get_monitor_socket(LINK_EVENTS)
            self.handshakes = Handshakes()
            try:
                self.sock.connect(url)
            except zmq.ZMQError as exc:
                raise ConfigError(f"cannot connect to {url!r}: {exc.strerror}") from None
        except BaseException:
            self._close_sockets()
            raise
        self.deadline = time.monotonic() + timeout
        self.sock.send(encode(Hello(PROTOCOL_VERSION, name, epoch, 1, False, 1, True)))
        self.welcomed = False

    def __enter__(self) -> AdminSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ask(self, question: Frame, kind: type[T]) -> tuple[T, list[bytes]]:
        if not self.welcomed:
            self._answer(Welcome)
            self.welcomed = True
        self.sock.send(encode(question))
        return self._answer(kind)

    def _answer(self, kind: type[T]) -> tuple[T, list[bytes]]:
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(self.monitor, zmq.POLLIN)
        while True:
            ready = dict(poller.poll(self.wait_ms()))
            if self.sock in ready:
                answer = self.take(recv_parts(self.sock), kind)
                if answer is not None:
                    return answer
            elif self.monitor in ready:
                self.check_refused()
            else:
                raise self.no_answer()

    def check_refused(self) -> None:
        """AccessDeniedError if the connection monitor says the router will not have us."""
        for event in link_events(self.monitor):
            refusal = self.handshakes.event(event)
            if refusal is not None:
                raise AccessDeniedError(refusal, url=self.url)

    def wait_ms(self) -> int:
        """How long the next answer may still take (0 once time is up)."""
        left = self.deadline - time.monotonic()
        return int(left * 1000) + 1 if left > 0 else 0

    def no_answer(self) -> RouterUnavailableError:
        self.check_refused()
        return RouterUnavailableError(
            f"router at {self.url} did not answer within {self.timeout} s", url=self.url
        )

    def take(self, parts: list[bytes], kind: type[T]) -> tuple[T, list[bytes]] | None:
        """``parts`` if they are the answer; None for anything else (Heartbeats...)."""
        frame = decode(parts[0])
        if isinstance(frame, kind):
            return frame, parts[1:]
        if isinstance(frame, Nack) and frame.seq == 0:
            if frame.code in (Code.NOT_ALLOWED, Code.REVOKED):
                raise AccessDeniedError(frame.reason, url=self.url)
            raise RouterUnavailableError(f"{_code_name(frame.code)}: {frame.reason}", url=self.url)
        return None

    def bye(self) -> None:
        """End the session (its socket stays open: ``close`` closes it)."""
        if self.welcomed and not self.sock.closed:
            self.welcomed = False
            try:
                self.sock.send(encode(Bye()), zmq.NOBLOCK)
            except zmq.ZMQError:
                pass

    def close(self) -> None:
        try:
            self.bye()
        finally:
            self._close_sockets()

    def _close_sockets(self) -> None:
        self.close_monitor()
        self.sock.close()

    def close_monitor(self) -> None:
        """Stop watching the connection (before the socket closes; ``close`` does it)."""
        monitor = getattr(self, "monitor", None)
        if monitor is not None and not monitor.closed:
            if not self.sock.closed:
                self.sock.disable_monitor()
            monitor.close(0)


def _code_name(code: int) -> str:
    try:
        return Code(code).name.lower()
    except ValueError:
        return f"code {code}"
