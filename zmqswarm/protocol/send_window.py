"""The sender's half of the reliability engine: sequence, resend, backoff, give up.

Rule 1: every decision about when a message is (re)sent or abandoned lives here; the drivers
only move bytes. Rule 2: time is passed in (``now``, seconds on any monotonic clock).

Model. Each message gets the next seq of this sender epoch and stays in ``pending`` until the
router's receipt covers it. Messages leave in seq order, at most ``window`` seqs past the lowest
unreceipted one. A message not receipted within ``resend_after`` is sent again with the same
seq (doubling the wait up to ``max_resend_after``, with jitter); the router deduplicates. Each
message names ``prev``, the previous seq to the same recipient, and the router accepts it only
after that one: so when a refusal or a loss hits one message, its successors to the same
recipient wait for it, and per-pair order holds whatever happens to the frames.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Iterable

import msgspec

from .frames import Code

__all__ = ["Failed", "Outgoing", "SendWindow"]

INF = float("inf")


class Outgoing(msgspec.Struct, gc=False):
    """One unreceipted message. gc=False: scalars and bytes only, and 100k of them may be
    alive at once, which the cyclic collector would otherwise walk again and again."""

    seq: int
    to: str
    payload: bytes
    prev: int
    notify: bool
    ttl_ms: int
    expires: float
    attempts: int = 0
    due: float = 0.0  # next (re)send time; only meaningful while queued is False
    queued: bool = True  # waiting in the send queue
    sent_at: float = -1.0  # when it last left


class Failed(msgspec.Struct, frozen=True):
    """A message abandoned with a code: the ticket failed."""

    seq: int
    to: str
    code: Code
    reason: str


class SendWindow(msgspec.Struct):
    window: int = 4096
    resend_after: float = 2.0
    max_resend_after: float = 30.0
    max_attempts: int = 0  # 0: keep trying until the ttl (if any) runs out
    # Longest wait after a retriable refusal (MAILBOX_FULL...): only the refused message is
    # retried (its successors wait behind it), so a retry costs the router one message.
    max_refused_after: float = 0.25
    rng: random.Random = msgspec.field(default_factory=random.Random)

    next_seq: int = 1
    pending: dict[int, Outgoing] = msgspec.field(default_factory=dict)  # seq order
    # Lowest seq that may still be pending. Not next(iter(pending)): after pops from its
    # front, a dict's iter() rescans the dead slots, which made receipts quadratic.
    _low: int = 1
    _queue: deque[int] = msgspec.field(default_factory=deque)  # seqs to send, ascending
    # Resends that fell behind the queue's head: a heap, merged with the queue in take().
    # (Sorting them into the deque made a long refusal quadratic: 20k messages behind a full
    # mailbox took minutes of CPU and the sender went silent long enough to lose its session.)
    _again: list[int] = msgspec.field(default_factory=list)
    # Timers. First attempts leave in seq order with the same timeout, so their deadlines are
    # monotonic: one (due, first, last) entry per batch in a deque. Everything else (resends,
    # deferrals, ttls) is rarer and goes to a heap. Both are cleaned lazily.
    _fresh: deque[tuple[float, int, int]] = msgspec.field(default_factory=deque)
    _timers: list[tuple[float, int]] = msgspec.field(default_factory=list)
    _last_to: dict[str, int] = msgspec.field(default_factory=dict)  # recipient -> last pending seq
    # recipient -> (the refused seq that is retried, the seqs to it that wait behind it)
    _parked: dict[str, tuple[int, list[int]]] = msgspec.field(default_factory=dict)

    # -- submitting -----------------------------------------------------------------------

    def submit(self, to: str, payload: bytes, now: float, notify: bool, ttl_ms: int) -> int:
        seq = self.next_seq
        self.next_seq = seq + 1
        prev = self._last_to.get(to, 0)
        if prev and prev not in self.pending:
            prev = 0  # already settled: nothing to wait for
        expires = INF
        if ttl_ms > 0:
            expires = now + ttl_ms / 1000
            heapq.heappush(self._timers, (expires, seq))
        msg = self.pending[seq] = Outgoing(seq, to, payload, prev, notify, ttl_ms, expires)
        self._last_to[to] = seq
        parked = self._parked.get(to)
        if parked is not None:
            self._park(msg, parked[1])  # its chain waits for a refused message: so does it
        else:
            self._queue.append(seq)
        return seq

    def resume(
        self, next_seq: int, unsent: Iterable[tuple[int, str, bytes, bool, int]], now: float
    ) -> None:
        """Carry on a stream an earlier process began (its spool): its unsettled messages
        (seq, to, payload, notify, ttl_ms; ascending seqs) are queued again, chained per
        recipient as if just sent; new messages take seqs from ``next_seq``."""
        self._low = 0  # set below: every seq under the first unsettled one is settled
        for seq, to, payload, notify, ttl_ms in unsent:
            self._low = self._low or seq
            self.next_seq = seq
            self.submit(to, payload, now, notify, ttl_ms)
        self._low = self._low or next_seq
        self.next_seq = next_seq

    @property
    def base(self) -> int:
        """Lowest unsettled seq: every seq below it is settled at this end."""
        low, pending, end = self._low, self.pending, self.next_seq
        while low < end and low not in pending:
            low += 1
        self._low = low
        return low

    def __len__(self) -> int:
        return len(self.pending)

    # -- sending --------------------------------------------------------------------------

    def take(self, now: float, limit: int) -> list[Outgoing]:
        """Messages to put on the wire now, in seq order, within the window."""
        out: list[Outgoing] = []
        queue, again, pending = self._queue, self._again, self.pending
        horizon = self.base + self.window
        fresh_due = now + self.resend_after
        first_fresh = 0
        while len(out) < limit:
            if again and (not queue or again[0] < queue[0]):  # merge, ascending
                seq = again[0]
                if seq >= horizon:
                    break
                heapq.heappop(again)
            elif queue:
                seq = queue[0]
                if seq >= horizon:
                    break
                queue.popleft()
            else:
                break
            msg = pending.get(seq)
            if msg is None or not msg.queued:
                continue  # settled meanwhile, or a stale duplicate queue entry
            msg.queued = False
            msg.sent_at = now
            msg.attempts += 1
            if msg.attempts == 1:
                msg.due = fresh_due
                first_fresh = first_fresh or seq
            else:
                msg.due = now + self._backoff(msg.attempts, self.resend_after)
                heapq.heappush(self._timers, (msg.due, seq))
            out.append(msg)
        if first_fresh:
            self._fresh.append((fresh_due, first_fresh, out[-1].seq))
        return out

    def has_ready(self) -> bool:
        first = self._next_queued()
        return first is not None and first < self.base + self.window

    def requeue_sent_before(self, when: float) -> None:
        """A new session began with a Hello sent at ``when``: what left before it may have
        died with an old connection, so it goes out again, in order. What left after it, on
        the Hello's own connection, reaches the router after the Hello: no need."""
        queue = deque[int]()
        for seq, msg in self.pending.items():  # pending is in seq order
            if msg.queued or msg.sent_at < when or msg.due == INF:  # INF: parked
                msg.queued = True
                queue.append(seq)
        self._queue = queue
        self._again.clear()
        self._parked.clear()  # everything went again: nothing waits behind anything

    # -- answers from the router ----------------------------------------------------------

    def on_receipt(self, upto: int, seqs: Iterable[int]) -> tuple[list[int], list[int]]:
        """Settle what the receipt covers: (accepted seqs, those of them sent with notify)."""
        accepted: list[int] = []
        notify: list[int] = []
        pending, last_to = self.pending, self._last_to
        for seq in range(self.base, min(upto, self.next_seq - 1) + 1):
            settled = pending.pop(seq, None)
            if settled is None:
                continue
            accepted.append(seq)
            if settled.notify:
                notify.append(seq)
            if last_to.get(settled.to) == seq:
                del last_to[settled.to]
        for seq in seqs:
            other = pending.pop(seq, None)
            if other is not None:
                accepted.append(seq)
                if other.notify:
                    notify.append(seq)
                if last_to.get(other.to) == seq:
                    del last_to[other.to]
        if self._parked:
            heads = {head: to for to, (head, _) in self._parked.items()}
            for seq in accepted:
                if seq in heads:
                    self._release(heads[seq])  # accepted at last: the rest of the chain goes
        return accepted, notify

    def on_nack(self, seq: int, code: Code, reason: str, retry_ms: int, now: float) -> list[Failed]:
        """A refusal. Retriable: retry it alone, soon, its successors to the same recipient
        waiting behind the chain's first refused message. Otherwise: abandon it, and re-chain
        its successor past it."""
        msg = self.pending.get(seq)
        if msg is None:
            return []
        if not code.retriable:
            del self.pending[seq]
            return [self._fail(msg, code, reason)]
        parked = self._parked.get(msg.to)
        if parked is not None and seq > parked[0]:
            self._park(msg, parked[1])  # it goes when the first refused one does
            return []
        # The router is alive and asked us to come back (its mailbox or memory was full): back
        # off, never past max_refused_after (a sender refused for a while must not sleep long
        # after the recipient has drained). This message heads its chain now: the messages
        # after it to the same recipient wait, unsent, since the router would refuse them
        # OUT_OF_ORDER anyway.
        delay = max(retry_ms / 1000, min(self._backoff(msg.attempts, 0.05), self.max_refused_after))
        msg.queued = False
        msg.due = now + delay
        heapq.heappush(self._timers, (min(msg.due, msg.expires), seq))
        behind = parked[1] if parked is not None else []
        for other in self.pending.values():
            if other.to == msg.to and other.seq > seq and other.due != INF:
                self._park(other, behind)  # the old head too, if there was one
        self._parked[msg.to] = (seq, behind)
        return []

    def tick(self, now: float) -> list[Failed]:
        """Fire timers: resend what timed out, abandon what expired or ran out of attempts."""
        failed: list[Failed] = []
        fresh, timers = self._fresh, self._timers
        while fresh and fresh[0][0] <= now:
            _, first, last = fresh.popleft()
            for seq in range(first, last + 1):
                self._fire(seq, now, failed)
        while timers and timers[0][0] <= now:
            self._fire(heapq.heappop(timers)[1], now, failed)
        return failed

    def next_deadline(self) -> float:
        fresh, timers, pending = self._fresh, self._timers, self.pending
        base = self.base
        while fresh and fresh[0][2] < base:
            fresh.popleft()  # the whole batch is settled
        while timers and timers[0][1] not in pending:
            heapq.heappop(timers)  # drop timers of settled messages
        return min(fresh[0][0] if fresh else INF, timers[0][0] if timers else INF)

    # -- internals ------------------------------------------------------------------------

    def _fire(self, seq: int, now: float, failed: list[Failed]) -> None:
        msg = self.pending.get(seq)
        if msg is None:
            return
        if msg.expires <= now:
            del self.pending[seq]
            failed.append(self._fail(msg, Code.EXPIRED, "ttl passed before receipt"))
        elif not msg.queued and msg.due <= now:
            if self.max_attempts and msg.attempts >= self.max_attempts:
                del self.pending[seq]
                reason = f"no receipt after {msg.attempts} attempts"
                failed.append(self._fail(msg, Code.MAX_ATTEMPTS, reason))
            else:
                msg.queued = True
                self._requeue(seq)

    def _requeue(self, seq: int) -> None:
        queue = self._queue
        if not queue or queue[-1] < seq:
            queue.append(seq)
        else:  # a resend behind fresh messages still waiting for room in the window
            heapq.heappush(self._again, seq)

    def _next_queued(self) -> int | None:
        queue, again = self._queue, self._again
        if again and (not queue or again[0] < queue[0]):
            return again[0]
        return queue[0] if queue else None

    def _park(self, msg: Outgoing, behind: list[int]) -> None:
        msg.queued = False
        msg.due = INF  # no resend timer: released when the chain's head is accepted
        behind.append(msg.seq)

    def _release(self, to: str) -> None:
        """The chain parked behind a refused message goes out again, in order."""
        _, behind = self._parked.pop(to)
        pending = self.pending
        for seq in sorted(behind):
            msg = pending.get(seq)
            if msg is not None and not msg.queued:
                msg.queued = True
                self._requeue(seq)

    def _fail(self, msg: Outgoing, code: Code, reason: str) -> Failed:
        parked = self._parked.get(msg.to)
        if parked is not None and parked[0] == msg.seq:
            self._release(msg.to)  # the head gave up: what waited behind it goes on
        if self._last_to.get(msg.to) == msg.seq:
            del self._last_to[msg.to]
        else:
            # An abandoned message must not block its successor: chain that one past it.
            for other in self.pending.values():
                if other.to == msg.to and other.prev == msg.seq:
                    other.prev = msg.prev
                    break
        return Failed(msg.seq, msg.to, code, reason)

    def _backoff(self, attempts: int, first: float) -> float:
        base = min(first * float(2 ** max(attempts - 1, 0)), self.max_resend_after)
        return base * self.rng.uniform(0.8, 1.2)
