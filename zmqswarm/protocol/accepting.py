"""Accepting: whether a sender's message enters its recipient's mailbox, and the receipt.

Rule 1: every decision about a message before it is accepted lives here: duplicate or new,
in per-pair order or not, room for it or not; and when the sender hears so. Rule 2: no
sockets and no clock.

Each sender incarnation (name, epoch) is a stream with a watermark: every seq up to it is
accepted (or settled at the sender, which says so with ``Send.base``), plus the accepted seqs
above it. A seq already accepted is a duplicate, receipted again and never stored twice: the
dedup is by watermark, not by a time window. A message whose ``prev`` (the sender's previous
message to the same recipient) is not accepted yet is refused OUT_OF_ORDER, so per-pair order
holds whatever happens to the frames. Receipts are coalesced per sender: the first after a
quiet spell goes at once, then at most one per ``receipt_delay`` or ``receipt_batch``.
"""

from __future__ import annotations

from .codec import encode, valid_name
from .delivering import Delivery
from .effects import Effects
from .frames import Code, Receipt, Send
from .options import RouterOptions
from .router_state import ENTRY_COST, Entry, Session, Stream
from .send_window import INF

__all__ = ["Acceptor"]


class Acceptor:
    def __init__(self, effects: Effects, options: RouterOptions, delivery: Delivery) -> None:
        self.fx = effects
        self.options = options
        self.delivery = delivery
        self.streams: dict[tuple[str, int], Stream] = {}
        self.draining = False  # refuse everything SHUTTING_DOWN: the router is leaving
        self.store_failing = ""  # why the journal cannot write: refuse STORE_FULL until it can
        # identity -> (stream, seqs to receipt, the stream's watermark before this batch)
        self._receipts: dict[bytes, tuple[Stream, list[int], int]] = {}
        self._last_receipt: dict[bytes, float] = {}  # identity -> when it last got one
        self._nacked: set[tuple[bytes, str]] = set()  # (identity, to) refused in this batch

    def watermark(self, name: str, epoch: int) -> int | None:
        """What the router has accepted of this sender incarnation (None: never seen)."""
        stream = self.streams.get((name, epoch))
        return stream.wm if stream is not None else None

    def accept(self, session: Session, frame: Send, payloads: list[bytes], now: float) -> None:
        identity = session.identity
        key = (session.name, session.epoch)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = Stream(frame.base - 1, set(), now)
        stream.last_seen = now
        receipt = self._receipts.get(identity)
        if receipt is None:
            receipt = self._receipts[identity] = (stream, [], stream.wm)
        wm_before, above_before = stream.wm, len(stream.above)
        if frame.base - 1 > stream.wm:  # the sender gave up what lies below base
            stream.wm = frame.base - 1
            stream.above = {s for s in stream.above if s > stream.wm}
        fresh = receipt[1]
        journal = self.fx.journal
        delivery, stats, nacked = self.delivery, self.fx.stats, self._nacked
        mailboxes, touched = delivery.mailboxes, delivery.touched
        o = self.options
        resident_budget = o.resident_bytes
        max_payload, max_messages, mailbox_bytes = (
            o.max_payload,
            o.mailbox_max_messages,
            (o.mailbox_max_bytes),
        )
        for item, payload in zip(frame.items, payloads, strict=True):
            seq = item.seq
            if seq <= stream.wm or seq in stream.above:
                stats["duplicates"] += 1
                fresh.append(seq)
                continue
            to = item.to
            if self.draining or self.store_failing:
                code = Code.SHUTTING_DOWN if self.draining else Code.STORE_FULL
                self._refuse(identity, seq, to, code, len(payload), now)
                continue
            prev = item.prev
            if prev > stream.wm and prev not in stream.above:
                if (identity, to) not in nacked:
                    nacked.add((identity, to))
                    self.fx.nack(identity, seq, Code.OUT_OF_ORDER, f"waiting for seq {prev}")
                else:
                    self.fx.withheld(Code.OUT_OF_ORDER)
                continue
            size = len(payload)
            mb = mailboxes.get(to)
            if mb is None:  # a name not seen yet: a mailbox for it, if the name and room allow
                if not valid_name(to):
                    self._refuse(identity, seq, to, Code.INVALID_NAME, size, now)
                    continue
                mb = delivery.mailbox_for(to)
                if mb is None:
                    self._refuse(identity, seq, to, Code.ROUTER_FULL, size, now)
                    continue
            if (  # the limits, inline: this runs per message (delivery.refusal says which)
                size > max_payload
                or len(mb.queue) + len(mb.inflight) + mb.spilled >= max_messages
                or mb.nbytes + size > mailbox_bytes
                or delivery.nbytes + size + ENTRY_COST > o.max_bytes
            ):
                code = delivery.refusal(mb, size) or Code.ROUTER_FULL
                self._refuse(identity, seq, to, code, size, now)
                continue
            expires = now + item.ttl_ms / 1000 if item.ttl_ms > 0 else INF
            name, epoch, notify = session.name, session.epoch, item.notify
            if journal is None:
                mb.queue.append(Entry(name, epoch, seq, payload, notify, expires, now))
                delivery.resident += size + ENTRY_COST
                if expires < INF:
                    mb.with_ttl += 1
            else:
                rid = journal.next_rid
                journal.next_rid = rid + 1
                wall = journal.wall_offset
                until = None if expires == INF else expires + wall
                journal.puts.append(
                    (rid, to, name, epoch, seq, payload, notify, until, now + wall, 0)
                )
                if mb.spilled or delivery.resident > resident_budget:
                    mb.spilled += 1  # on disk only, read back when its recipient can take it
                else:
                    mb.queue.append(Entry(name, epoch, seq, payload, notify, expires, now, 0, rid))
                    mb.cursor = rid
                    delivery.resident += size + ENTRY_COST
                    if expires < INF:
                        mb.with_ttl += 1
            mb.nbytes += size
            delivery.nbytes += size + ENTRY_COST
            touched.add(to)
            if seq == stream.wm + 1:
                stream.wm = seq
                above = stream.above
                while stream.wm + 1 in above:
                    stream.wm += 1
                    above.discard(stream.wm)
            else:
                stream.above.add(seq)
                fresh.append(seq)
            stats["accepted"] += 1
        if journal is not None and (stream.wm != wm_before or len(stream.above) != above_before):
            journal.streams.add(key)
            stream.batch = journal.number

    def take_receipts(self, now: float) -> None:
        """Receipts that are due, to the effects; the rest wait for ``next_deadline``."""
        self._nacked.clear()
        if not self._receipts:
            return
        # With a journal, receipts wait for the next commit anyway, and go out together when
        # it lands: pacing them as well would only add its delay.
        delay = 0.0 if self.draining or self.fx.journal else self.options.receipt_delay
        batch, last, receipts = self.options.receipt_batch, self._last_receipt, self._receipts
        for identity in list(receipts):
            stream, touched, wm_before = receipts[identity]
            waiting = stream.wm - wm_before + len(touched)
            if waiting > 0 and now - last.get(identity, -INF) < delay and waiting < batch:
                continue  # not due yet
            del receipts[identity]
            if waiting > 0:  # else nothing was accepted: nothing to say
                fresh = sorted(s for s in touched if s > stream.wm)
                self.fx.send_durable(identity, [encode(Receipt(stream.wm, fresh))])
                last[identity] = now

    def next_deadline(self) -> float:
        if not self._receipts:
            return INF
        delay, last = self.options.receipt_delay, self._last_receipt
        return min(last.get(i, -INF) + delay for i in self._receipts)

    def forget(self, identity: bytes) -> None:
        """The session behind ``identity`` ended: its receipt pacing goes with it."""
        self._last_receipt.pop(identity, None)

    def expire_streams(self, now: float) -> None:
        """Forget the watermark of a sender silent for ``stream_ttl``."""
        ttl = self.options.stream_ttl
        journal = self.fx.journal
        for key in [k for k, s in self.streams.items() if now - s.last_seen > ttl]:
            del self.streams[key]
            if journal is not None:
                journal.forgotten.append(key)
                journal.streams.discard(key)

    def _refuse(
        self, identity: bytes, seq: int, to: str, code: Code, size: int, now: float
    ) -> None:
        if code.retriable:
            if (identity, to) in self._nacked:
                # One retriable refusal per pair per batch: the sender resends the chain.
                self.fx.withheld(code)
                return
            self._nacked.add((identity, to))
            why = f": {self.store_failing}" if code is Code.STORE_FULL else ""
            detail = f"{to}: {code.name.lower()}{why}"
            self.fx.nack(identity, seq, code, detail, self.options.retry_ms)
        else:
            detail = f"{size} bytes > {self.options.max_payload}" if code is Code.TOO_LARGE else to
            self.fx.nack(identity, seq, code, detail)
        self.fx.log(code.name, f"refused seq {seq} to {to!r}: {code.name}", now)
