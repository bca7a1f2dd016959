"""What both clients do with the core, minus sockets and threads: feed frames, fire timers,
fold events into tickets and an inbox. The sync and async drivers each wrap one Engine."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from zmqswarm.client.tickets import TicketBook, TicketId
from zmqswarm.errors import ClientClosedError, NameTakenError, RouterUnavailableError
from zmqswarm.protocol import ClientCore, ClientOptions, Code, valid_name
from zmqswarm.protocol.client_core import Refused, SessionDown, SessionUp
from zmqswarm.protocol.inbox import Inbound
from zmqswarm.transport import new_epoch, resolve_router_url

__all__ = ["Engine", "PeerBase", "TicketBase"]

Send = Callable[[list[bytes]], Any]


class Engine:
    def __init__(self, name: str, epoch: int, options: ClientOptions) -> None:
        self.core = ClientCore(name, epoch=epoch, options=options)
        self.book = TicketBook(name, epoch)
        self.inbox: deque[Inbound] = deque()
        self.connected = False
        self.on_state: Callable[[], None] | None = None  # session up/down/refused
        # Well under the ack batch (a quarter of the window): acks leave every turn or two.
        self.turn_messages = max(1, options.recv_window // 8)

    @staticmethod
    def now() -> float:
        return time.monotonic()

    def unsettled(self, seq: int) -> bool:
        return seq in self.core.window.pending or seq >= self.core.window.next_seq

    def feed_turn(self, frames: Iterable[list[bytes]], now: float) -> int:
        """Feed ``frames`` until they run out or a turn's worth of messages waits for the
        application (``turn_messages``); return how many frames it took. A turn that fed a
        whole credit window at once handed the application nothing until its end, so acks,
        and with them the router's next deliveries, came once a window (every ~14 ms at
        160k msg/s): a backlog drained 1.4x (Client) to 2.2x (AsyncClient) slower."""
        core, limit, fed = self.core, self.turn_messages, 0
        for parts in frames:
            core.receive(parts, now)
            fed += 1
            if core.received_waiting >= limit:
                break
        return fed

    @property
    def turn_full(self) -> bool:
        """The last ``feed_turn`` stopped at its limit: hand over before feeding more."""
        return self.core.received_waiting >= self.turn_messages

    def flush(self, now: float, send: Send) -> None:
        """Send what is ready, firing no timers: the short path after a send() (timers keep
        their own turn, and a new message only adds a later deadline)."""
        for parts in self.core.outgoing(now):
            send(parts)

    def step(self, now: float, send: Send) -> float:
        """Fire timers, fold events, send what is due. Returns seconds until the next timer."""
        core = self.core
        core.tick(now)
        received = core.take_received()
        if received:
            self.inbox.extend(received)
        events = core.events()
        if events:
            self.book.on_events(events)
            changed = False
            for ev in events:
                if isinstance(ev, SessionUp | SessionDown | Refused):
                    self.connected = isinstance(ev, SessionUp)
                    changed = True
            if changed and self.on_state is not None:
                self.on_state()
        for parts in core.outgoing(now):
            send(parts)
        return max(0.0, core.next_deadline() - now)


class PeerBase:
    """What Client and AsyncClient share before any socket exists: who we are, where the
    router is, and the checks every call makes."""

    def __init__(
        self,
        name: str,
        router: str | None,
        auto_ack: bool,
        block: bool,
        options: ClientOptions | None,
    ) -> None:
        if not valid_name(name):
            raise ValueError(f"invalid peer name {name!r}")
        self.name = name
        self.epoch = new_epoch()
        self.url = resolve_router_url(router)
        self.options = options or ClientOptions()
        self.auto_ack = auto_ack
        self.block = block

    def _book(self) -> TicketBook:
        raise NotImplementedError

    def _validate_send(self, to: str, payload: bytes) -> None:
        if not valid_name(to):
            raise ValueError(f"invalid recipient name {to!r}")
        if len(payload) > self.options.max_payload:
            raise ValueError(f"payload of {len(payload)} bytes > {self.options.max_payload}")

    def _report_unsent(self, unsent: list[TicketId]) -> None:
        """Leaving a ``with`` block drops close()'s answer, so log it. An explicit close()
        only returns it: its caller says it in its own words (``zs send`` does, in one line)."""
        if unsent:
            import logging

            logging.getLogger("zmqswarm.client").warning(
                "%s closed with %d unreceipted messages", self.name, len(unsent)
            )

    def _raise_if_unusable(self, closed: bool, refusal: Refused | None) -> None:
        if closed:
            raise ClientClosedError(f"client {self.name!r} is closed")
        if refusal is not None:
            cls = NameTakenError if refusal.code is Code.NAME_TAKEN else RouterUnavailableError
            raise cls(refusal.reason, url=self.url)


P = TypeVar("P", bound=PeerBase)


class TicketBase(Generic[P]):
    """A sent message's ticket: its TicketId plus the client that can wait for it."""

    __slots__ = ("_client", "note", "seq")

    def __init__(self, client: P, seq: int) -> None:
        self._client = client
        self.seq = seq
        self.note = ""  # after wait("delivered"): how it went, if the recipient said

    @property
    def progress(self) -> str:
        """The recipient's latest word on why it holds this message ("" if none): for
        tickets sent with ``notify``, e.g. a tmux agent's ``dead: no live pane``."""
        return self._client._book().progress.get(self.seq, "")

    @property
    def id(self) -> TicketId:
        return TicketId(self._client.name, self._client.epoch, self.seq)

    def __str__(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"
