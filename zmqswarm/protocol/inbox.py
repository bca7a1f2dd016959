"""The recipient's half of the reliability engine: deduplicate, then ack what was handed over.

Rule 1: a message is handed to the application at most once per (sender, epoch, seq) in this
process; every delivery is acked exactly when the application has it (or when it is recognised
as a duplicate). Rule 2: no I/O and no clock.

Within a session the router sends each delivery once, in dseq order, over one connection: a
gap means frames died with a connection, and only a new session brings them again (``gap``
tells the client core to say Hello). Messages taken but never handed over can be forgotten
(``forget``): after a session the router ended, another peer may have taken the name, and
they come again to whoever holds it.

Dedup is by watermark, not by a time window: the router forwards each (sender, recipient) pair
in order, so per (sender, epoch) the highest seq handed over so far decides whether a delivery
is new. Acks are cumulative over the session's delivery numbers (dseq); an application that acks
out of order (``auto_ack=False``) holds the cumulative ack back until the gap closes, which is
what bounds unacked work at the router's credit window.
"""

from __future__ import annotations

import msgspec

from .frames import Deliver, DeliverItem

__all__ = ["Inbound", "Inbox", "MessageKey"]

MAX_NOTE = 512  # bytes of an ack note worth carrying: an outcome and its timings

MessageKey = tuple[str, int, int]
"""(sender, sender epoch, seq): the ticket of a message, unique forever."""


class Inbound(msgspec.Struct, frozen=True):
    """A new message for the application."""

    key: MessageKey
    payload: bytes
    attempt: int
    expires: float = 0.0  # on the recipient's clock; 0: never


class Inbox(msgspec.Struct):
    max_streams: int = 100_000  # (sender, epoch) watermarks kept; the oldest half go past it

    session: int = 0  # the router session whose deliveries are current
    _expected: int = 1  # next dseq to take: deliveries are taken strictly in order
    _high: dict[tuple[str, int], int] = msgspec.field(default_factory=dict)
    # Acked by an earlier process above its watermark (a recipient's state, auto_ack=False).
    _done_above: dict[tuple[str, int], set[int]] = msgspec.field(default_factory=dict)
    _unacked: dict[MessageKey, int] = msgspec.field(
        default_factory=dict
    )  # handed, not acked -> dseq
    _acked_upto: int = 0
    _acked_above: set[int] = msgspec.field(default_factory=set)
    _sent_upto: int = 0  # cumulative ack last told to the router
    _notes: list[tuple[int, str]] = msgspec.field(default_factory=list)  # (dseq, note) to send
    gap: bool = False  # a Deliver skipped dseqs: this session lost frames, start another
    urgent: bool = False  # an acked message's sender waits for the outcome: ack now
    _waited_on: set[MessageKey] = msgspec.field(default_factory=set)  # notify, unacked

    def seed(
        self, high: dict[tuple[str, int], int], above: dict[tuple[str, int], set[int]]
    ) -> None:
        """Start from what an earlier process handed over and acked (a recipient's state):
        per stream every seq up to ``high``, and those in ``above``, are duplicates."""
        self._high.update(high)
        self._done_above = {stream: set(seqs) for stream, seqs in above.items()}

    def reset_session(self, session: int) -> None:
        """A new router session: delivery numbers start again at 1."""
        self.session = session
        self._expected = 1
        self._acked_upto = 0
        self._acked_above.clear()
        self._sent_upto = 0
        self._notes.clear()  # their dseqs meant the old session's deliveries
        self._unacked = dict.fromkeys(self._unacked, 0)  # dseq unknown until redelivered
        self.gap = False

    def on_deliver(self, frame: Deliver, payloads: list[bytes], now: float) -> list[Inbound]:
        new: list[Inbound] = []
        if frame.session != self.session:
            return new  # a stale session's frame: its messages come again in this one
        high, unacked, expected, take = self._high, self._unacked, self._expected, new.append
        above = self._done_above
        for item, payload in zip(frame.items, payloads, strict=True):  # per message: locals
            dseq = item.dseq
            if dseq != expected:
                if dseq < expected:
                    self._redelivered(item)  # a resend of one we took
                else:
                    self.gap = True  # what follows comes again, in order, in a new session
                continue
            expected += 1
            sender, epoch, seq = item.sender, item.epoch, item.seq
            stream = (sender, epoch)
            if seq <= high.get(stream, 0) or (above and seq in above.get(stream, ())):
                self._redelivered(item)
                continue
            high[stream] = seq
            key = (sender, epoch, seq)
            unacked[key] = dseq
            if item.notify:
                self._waited_on.add(key)
            ttl = item.ttl_left_ms
            take(Inbound(key, payload, item.attempt, now + ttl / 1000 if ttl else 0.0))
        self._expected = expected
        if len(high) > self.max_streams:
            for stale in list(high)[: len(high) // 2]:
                del high[stale]
        return new

    def forget(self, taken: list[Inbound]) -> None:
        """Never hand these over (taken, not handed): unmark them as seen, so that they are
        new when they come again. Per stream they follow everything handed over (the router
        keeps each pair in order), so the watermark goes back to just below the first."""
        first: dict[tuple[str, int], int] = {}
        for msg in taken:
            sender, epoch, seq = msg.key
            self._unacked.pop(msg.key, None)
            self._waited_on.discard(msg.key)
            stream = (sender, epoch)
            first[stream] = min(seq, first.get(stream, seq))
        for stream, seq in first.items():
            self._high[stream] = seq - 1

    def ack(self, key: MessageKey, note: str = "") -> None:
        """The application has message ``key``; ``note`` says how that went (optional)."""
        dseq = self._unacked.pop(key, None)
        if dseq:
            if note:
                self._notes.append((dseq, note[:MAX_NOTE]))
            if self._waited_on and key in self._waited_on:
                self._waited_on.discard(key)
                self.urgent = True
            self._ack_dseq(dseq)

    def dseq_of(self, key: MessageKey) -> int:
        """The current delivery number of a message the application holds (0: unknown)."""
        return self._unacked.get(key, 0)

    def take_notes(self, upto: int) -> list[tuple[int, str]]:
        """Notes of deliveries the next Ack (up to ``upto``) covers."""
        notes = [n for n in self._notes if n[0] <= upto]
        self._notes = [n for n in self._notes if n[0] > upto]
        return notes

    def pending_ack(self) -> int | None:
        """The cumulative ack to send, if it moved since the last one sent."""
        if self._acked_upto > self._sent_upto:
            self._sent_upto = self._acked_upto
            self.urgent = False
            return self._acked_upto
        return None

    @property
    def ack_backlog(self) -> int:
        """How far the cumulative ack moved since the router was last told."""
        return self._acked_upto - self._sent_upto

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    def _redelivered(self, item: DeliverItem) -> None:
        key = (item.sender, item.epoch, item.seq)
        if key in self._unacked:
            self._unacked[key] = item.dseq  # still with the app: its ack will cover this dseq
        else:
            self._ack_dseq(item.dseq)  # handed over before: ack at once, never hand again
            self._sent_upto = 0  # the router resent, so our ack was lost: say it again

    def _ack_dseq(self, dseq: int) -> None:
        if dseq <= self._acked_upto:
            return  # an old session's number, or acked already
        if dseq != self._acked_upto + 1:
            self._acked_above.add(dseq)
            return
        upto = dseq
        above = self._acked_above
        while upto + 1 in above:
            upto += 1
            above.discard(upto)
        self._acked_upto = upto
