"""Tickets and messages as the application sees them, and the bookkeeping both clients share.

``TicketBook`` folds the core's events into "where is ticket N now" and calls back whoever
waits for a state. It has no I/O: each client runs it in its own turns.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, Literal, Protocol, TypeVar

import msgspec

from zmqswarm.errors import DeliveryError
from zmqswarm.protocol.client_events import Accepted, Event, Failed, Notified, Progressed
from zmqswarm.protocol.inbox import MessageKey

__all__ = [
    "BaseTicket",
    "Message",
    "MessageKey",
    "Outcome",
    "TicketBook",
    "TicketId",
    "TicketState",
    "WaitFor",
]

WaitFor = Literal["accepted", "delivered"]
TicketState = Literal["pending", "accepted", "delivered", "failed"]


class TicketId(msgspec.Struct, frozen=True):
    """(sender, epoch, seq): names one message forever. ``str()`` gives its printed form."""

    sender: str
    epoch: int
    seq: int

    def __str__(self) -> str:
        return f"{self.sender}/{self.epoch:x}/{self.seq}"


class Acker(Protocol):
    """What a message needs of the client that received it."""

    def _ack_key(self, key: MessageKey, note: str) -> None: ...
    def _hold_key(self, key: MessageKey, reason: str) -> None: ...


class Message:
    """A message handed to the application: ``sender``, ``payload`` (bytes), ``ticket``,
    ``attempt`` (deliveries of it so far; >1: an earlier recipient took it and died)."""

    __slots__ = ("_client", "_key", "attempt", "expires", "payload", "sender")

    def __init__(
        self,
        sender: str,
        payload: bytes,
        key: MessageKey,
        attempt: int = 1,
        client: Acker | None = None,
        expires: float = 0.0,
    ) -> None:
        self.sender = sender
        self.payload = payload
        self.attempt = attempt
        # time.monotonic() after which the sender no longer wants it handled (0: never).
        # To drop it unhandled, ack it with a note starting "expired:".
        self.expires = expires
        self._key = key
        self._client = client  # None once acked

    @property
    def ticket(self) -> TicketId:
        return TicketId(*self._key)

    @property
    def text(self) -> str:
        return self.payload.decode("utf-8", errors="replace")

    def hold(self, reason: str) -> None:
        """Tell the router (and a sender that asked for ``notify``) that this message is
        held, not handled yet, and why. It stays unacked; say it again when the reason
        changes. The router does not redeliver a message its recipient says it holds."""
        if self._client is not None:
            self._client._hold_key(self._key, reason)

    def ack(self, note: str = "") -> None:
        """Tell the router this message is handled (only with ``auto_ack=False``). ``note``
        (at most 512 bytes) says how; a sender that asked for ``notify`` gets it with the
        Delivered notice, as ``ticket.note``."""
        if self._client is not None:
            self._client._ack_key(self._key, note)
            self._client = None

    def __repr__(self) -> str:
        return f"<Message from {self.sender} {self.ticket} {len(self.payload)} B>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Message):
            return NotImplemented
        return (self._key, self.payload) == (other._key, other.payload)

    def __hash__(self) -> int:
        return hash(self._key)


Outcome = tuple[TicketState, DeliveryError | None]
Callback = Callable[[Outcome], None]


class TicketBook:
    """Where each ticket of this sender is, with bounded memory.

    A seq below the window's base that is neither failed nor waiting for a notice is accepted;
    failures and final notices are remembered for the last ``keep`` tickets.
    """

    def __init__(self, sender: str, epoch: int, keep: int = 100_000) -> None:
        self.sender, self.epoch, self.keep = sender, epoch, keep
        self._final: OrderedDict[int, Outcome] = OrderedDict()  # failed / delivered / notices
        self._waiters: dict[int, list[tuple[WaitFor, Callback]]] = {}
        # How delivered tickets ended, in the recipient's words (a tmux agent's outcome and
        # timings); bounded like _final.
        self.notes: OrderedDict[int, str] = OrderedDict()
        self.progress: OrderedDict[int, str] = OrderedDict()  # latest Held reason per ticket

    def state(self, seq: int, unsettled: Callable[[int], bool]) -> Outcome:
        if seq in self._final:
            return self._final[seq]
        if unsettled(seq):
            return ("pending", None)
        return ("accepted", None)

    def wait(
        self, seq: int, want: WaitFor, unsettled: Callable[[int], bool], callback: Callback
    ) -> None:
        """Call ``callback`` once ticket ``seq`` reaches ``want`` (or fails): now if it has."""
        outcome = self.state(seq, unsettled)
        if self._reached(outcome, want, seq):
            callback(outcome)
        else:
            self._waiters.setdefault(seq, []).append((want, callback))

    def cancel(self, seq: int, callback: Callback) -> None:
        waiters = self._waiters.get(seq)
        if waiters:
            waiters[:] = [w for w in waiters if w[1] is not callback]

    def on_events(self, events: list[Event]) -> None:
        for ev in events:
            if isinstance(ev, Accepted):
                if self._waiters:  # usually nobody waits: skip the per-seq work
                    for seq in ev.seqs:
                        if seq in self._waiters:
                            self._fire(seq, ("accepted", None))
            elif isinstance(ev, Failed):
                error = DeliveryError(self._name(ev.seq), ev.code.name.lower(), ev.reason)
                self._finish(ev.seq, ("failed", error))
            elif isinstance(ev, Progressed):
                self.progress[ev.seq] = ev.reason
                self.progress.move_to_end(ev.seq)
                if len(self.progress) > self.keep:
                    self.progress.popitem(last=False)
            elif isinstance(ev, Notified):
                if ev.status == "delivered":
                    if ev.detail:
                        self.notes[ev.seq] = ev.detail
                        if len(self.notes) > self.keep:
                            self.notes.popitem(last=False)
                    self._finish(ev.seq, ("delivered", None))
                else:
                    detail = ev.detail or ev.status
                    self._finish(
                        ev.seq, ("failed", DeliveryError(self._name(ev.seq), ev.status, detail))
                    )

    def _reached(self, outcome: Outcome, want: WaitFor, seq: int) -> bool:
        state = outcome[0]
        if state in ("failed", "delivered"):
            return True
        return state == "accepted" and want == "accepted"

    def _finish(self, seq: int, outcome: Outcome) -> None:
        self._final[seq] = outcome
        if len(self._final) > self.keep:
            self._final.popitem(last=False)
        self._fire(seq, outcome)

    def _fire(self, seq: int, outcome: Outcome) -> None:
        waiters = self._waiters.pop(seq, None)
        if not waiters:
            return
        rest = []
        for want, callback in waiters:
            if self._reached(outcome, want, seq):
                callback(outcome)
            else:
                rest.append((want, callback))
        if rest:
            self._waiters[seq] = rest

    def _name(self, seq: int) -> str:
        return str(TicketId(self.sender, self.epoch, seq))


class Teller(Protocol):
    """What a ticket needs of the client that sent it."""

    name: str
    epoch: int

    def _ticket_outcome(self, seq: int) -> Outcome: ...
    def _ticket_progress(self, seq: int) -> str: ...
    def _ticket_note(self, seq: int) -> str: ...


C = TypeVar("C", bound=Teller)


class BaseTicket(Generic[C]):
    """A sent message's ticket: its TicketId, and the client that can tell where it is. Each
    driver adds ``state`` and ``wait()`` in its own way of waiting."""

    __slots__ = ("_client", "note", "seq")

    def __init__(self, client: C, seq: int) -> None:
        self._client = client
        self.seq = seq
        self.note = ""  # after wait("delivered"): how it went, if the recipient said

    @property
    def id(self) -> TicketId:
        return TicketId(self._client.name, self._client.epoch, self.seq)

    @property
    def progress(self) -> str:
        """The recipient's latest word on why it holds this message ("" if none): for
        tickets sent with ``notify``, e.g. a tmux agent's ``dead: no live pane``."""
        return self._client._ticket_progress(self.seq)

    def _reached(self, want: WaitFor) -> Outcome | None:
        """The outcome if the ticket has reached ``want`` (or failed), else None."""
        outcome = self._client._ticket_outcome(self.seq)
        state: TicketState = outcome[0]
        if state in ("failed", "delivered") or (state == "accepted" and want == "accepted"):
            return outcome
        return None

    def _settle(self, outcome: Outcome) -> None:
        error = outcome[1]
        if error is not None:
            raise error
        self.note = self._client._ticket_note(self.seq)

    def __str__(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"
