"""Delivering: the router's mailboxes, forwarded in order to whoever holds each name.

Rule 1: every decision about a message once it is accepted lives here: when it goes out, to
which session, under what credit; when it comes back (a session ended, a send failed); when
it is done (acked) or dead (ttl, too many deliveries); who hears about it (notices). Rule 2:
no sockets and no clock: ``now`` is passed in, frames go to ``Effects``.

A mailbox is forwarded to its name's receiving session with at most ``window`` deliveries
unacked (and ``max_inflight_bytes``). A live session never gets the same delivery twice: frames
are not lost inside a connection. When a session ends its unacked deliveries go back to the
front of the queue, to be numbered anew for the next holder of the name; each delivery counts
an attempt, and ``max_attempts`` of them without an ack make a message dead (a poison pill).
Payloads are carried as the bytes objects they arrived in: never decoded, never copied.
"""

from __future__ import annotations

from collections import deque

from .codec import MAX_BATCH, encode
from .dead_letters import DeadLetterStore
from .effects import Effects
from .frames import Code, Deliver, Delivered, DeliverItem, Held, Status
from .journaling import DeadRow, Put, Spill
from .options import RouterOptions
from .packing import pack_limit, packed
from .query_frames import PeerItem
from .router_state import ENTRY_COST, Entry, Mailbox, Registry, Session, deliver_item
from .send_window import INF
from .state_feed import LatencyWindow

__all__ = ["EXPIRED_NOTE", "Delivery"]

EXPIRED_NOTE = "expired:"  # an ack note so marked: dropped unhandled, the ttl had passed
_LATENCY_STRIDE = 16
_QUEUE_NOTICES = 64  # queued notify senders told why their message waits, per Hold
PAGE = 1024  # spilled messages read back at a time, once fewer than this wait in memory


class Delivery:
    def __init__(self, effects: Effects, options: RouterOptions, registry: Registry) -> None:
        self.fx = effects
        self.options = options
        self.registry = registry
        self.mailboxes: dict[str, Mailbox] = {}
        self.dead = DeadLetterStore(options.dead_max)
        self.latency = LatencyWindow()  # accept -> ack, until the observers' next Update
        # Every message held, router-wide (in memory or, spilled, on disk): its payload and
        # ENTRY_COST, so that empty payloads count against max_bytes too.
        self.nbytes = 0
        self.resident = 0  # about what waiting mail takes in memory (payloads and entries)
        self.touched: set[str] = set()  # mailboxes to pump at the end of the batch
        self._notices: dict[tuple[str, int], list[Delivered]] = {}  # for offline senders

    # -- taking mail in -------------------------------------------------------------------

    def mailbox_for(self, to: str) -> Mailbox | None:
        """``to``'s mailbox, made if there is room for one more (None: router full)."""
        mb = self.mailboxes.get(to)
        if mb is None and len(self.mailboxes) < self.options.max_mailboxes:
            mb = self.mailboxes[to] = Mailbox()
        return mb

    def refusal(self, mb: Mailbox, size: int) -> Code | None:
        """Why a message of ``size`` bytes cannot enter ``mb`` now (None: it can). Accepting
        checks the same limits inline for speed, and asks this only to name a refusal; what
        it puts in a mailbox it accounts for in ``mb.nbytes``, ``nbytes`` and ``with_ttl``."""
        o = self.options
        if size > o.max_payload:
            return Code.TOO_LARGE
        if self.nbytes + size + ENTRY_COST > o.max_bytes:
            return Code.ROUTER_FULL
        if len(mb.queue) + len(mb.inflight) + mb.spilled >= o.mailbox_max_messages:
            return Code.MAILBOX_FULL
        if mb.nbytes + size > o.mailbox_max_bytes:
            return Code.MAILBOX_FULL
        return None

    # -- sending mail out -----------------------------------------------------------------

    def pump_touched(self, now: float) -> None:
        for name in self.touched:
            self._pump(name, now)
        self.touched.clear()

    def _pump(self, name: str, now: float) -> None:
        mb = self.mailboxes.get(name)
        if mb is None:
            return
        session = self.registry.by_name.get(name)
        if session is None:
            if not mb.queue and not mb.inflight and not mb.spilled:
                del self.mailboxes[name]
            return
        if mb.fenced_until > now:
            return  # tick() touches it again once the fence is down
        queue, inflight = mb.queue, mb.inflight
        room = session.window - len(inflight)
        max_attempts = self.options.max_attempts
        byte_cap = self.options.max_inflight_bytes
        # A packed Deliver's one part stays within what the recipient's socket takes.
        part_cap = pack_limit(self.options.max_payload) if session.packed else INF
        while room > 0 and queue:
            items: list[DeliverItem] = []
            payloads: list[bytes] = []
            first = session.dseq + 1
            limit = min(room, MAX_BATCH)
            size = 0
            while queue and len(items) < limit:  # per message: locals, no attribute churn
                if mb.inflight_bytes >= byte_cap and (items or inflight):
                    room = 0  # the byte credit is spent: wait for acks
                    break
                if items and size + len(queue[0].payload) > part_cap:
                    break  # the next Deliver takes it
                entry = queue.popleft()
                if entry.expires <= now or entry.attempts >= max_attempts:
                    code = Code.EXPIRED if entry.expires <= now else Code.MAX_ATTEMPTS
                    self.bury(name, mb, entry, code, now)
                    continue
                entry.attempts += 1
                dseq = session.dseq = session.dseq + 1
                inflight.append((dseq, entry))
                mb.inflight_bytes += len(entry.payload)
                items.append(deliver_item(dseq, entry, now))
                payloads.append(entry.payload)
                size += len(entry.payload)
            if not items:
                break
            if session.packed:
                sizes, body = packed(payloads)
                parts = [encode(Deliver(session.sid, items, sizes)), body]
            else:
                parts = [encode(Deliver(session.sid, items)), *payloads]
            self.fx.send(session.identity, parts, first)
            room = max(0, room - len(items)) if room else 0
            self.fx.stats["delivered"] += len(items)
        if mb.spilled and not mb.paging and len(queue) < PAGE and self.fx.journal is not None:
            self.fx.journal.reads.append((name, mb.cursor, PAGE))  # read once this is written
            mb.paging = True

    def undeliver(self, session: Session, first_dseq: int) -> None:
        """The driver could not send the Deliver starting at ``first_dseq`` (or one before
        it): those messages go back to the front of the mailbox, uncounted."""
        mb = self.mailboxes.get(session.name)
        if mb is None:
            return
        back: list[Entry] = []
        while mb.inflight and mb.inflight[-1][0] >= first_dseq:
            entry = mb.inflight.pop()[1]
            mb.inflight_bytes -= len(entry.payload)
            entry.attempts -= 1
            back.append(entry)
        mb.queue.extendleft(back)  # back is newest-first: extendleft restores the order
        session.dseq = first_dseq - 1
        self.fx.stats["delivered"] -= len(back)  # counted when made: they never left

    def session_started(self, session: Session) -> None:
        """A session opened: its sender's held notices go out, its mailbox starts moving."""
        for notice in self._notices.pop((session.name, session.epoch), []):
            self.fx.send(session.identity, [encode(notice)])
        if not session.send_only:
            self.touched.add(session.name)

    def session_ended(self, session: Session) -> None:
        """What the session had out and unacked goes back to the front of its mailbox."""
        mb = self.mailboxes.get(session.name)
        if mb is not None and mb.inflight:
            journal = self.fx.journal
            if journal is not None:  # the poison-pill count outlives a restart
                journal.attempts.extend((entry.rid, entry.attempts) for _, entry in mb.inflight)
            mb.queue.extendleft(entry for _, entry in reversed(mb.inflight))
            self.fx.stats["redelivered"] += len(mb.inflight)
            mb.inflight.clear()
            mb.inflight_bytes = 0
            self.touched.add(session.name)
        session.dseq = 0

    def fence(self, name: str, until: float) -> None:
        """No delivery of ``name``'s mail before ``until`` (a lock-delay after a takeover)."""
        mb = self.mailboxes.get(name)
        if mb is not None:
            mb.fenced_until = until

    # -- answers from the recipient -------------------------------------------------------

    def ack(self, session: Session, upto: int, notes: dict[int, str] | None, now: float) -> None:
        mb = self.mailboxes.get(session.name)
        if mb is None:
            return
        inflight = mb.inflight
        acked = 0
        record = self.latency.record
        journal = self.fx.journal
        done = journal.done if journal is not None else None
        # Time every message of a small ack, every 16th of a big one (standing for 16): a
        # record costs ~0.35 us, a fifth of the core's whole work a message at full speed.
        stride = _LATENCY_STRIDE if inflight and upto - inflight[0][0] >= _LATENCY_STRIDE else 1
        while inflight and inflight[0][0] <= upto:
            dseq, entry = inflight.popleft()
            mb.inflight_bytes -= len(entry.payload)
            acked += 1
            if dseq % stride == 0:
                record(now - entry.accepted, stride)
            note = notes.get(dseq, "") if notes else ""
            if note.startswith(EXPIRED_NOTE):
                # The recipient dropped it unhandled: its ttl passed while it waited there.
                self.bury(session.name, mb, entry, Code.EXPIRED, now, note)
                continue
            self._release(mb, entry)
            if done is not None:
                done.append(entry.rid)
            if entry.notify:
                self._notify(entry, Delivered(entry.seq, Status.DELIVERED, detail=note))
        if acked:
            self.fx.stats["acked"] += acked
        self.touched.add(session.name)

    def hold(self, session: Session, dseq: int, reason: str) -> None:
        """The recipient holds delivery ``dseq`` for ``reason``: its sender hears it (with
        notify), and so do the senders whose messages wait behind it."""
        mb = self.mailboxes.get(session.name)
        if mb is None:
            return
        for number, entry in mb.inflight:
            if number == dseq:
                self.fx.stats["held"] += 1
                self._tell(entry, reason)
                self._tell_queued(mb, entry, reason)
                return

    def _tell(self, entry: Entry, reason: str) -> None:
        sender = self.registry.by_stream.get((entry.sender, entry.epoch))
        if entry.notify and sender is not None:
            self.fx.send(sender.identity, [encode(Held(entry.seq, reason))])

    def _tell_queued(self, mb: Mailbox, head: Entry, reason: str) -> None:
        """Queued ``notify`` messages wait for the held one: say so, naming it."""
        ticket = f"{head.sender}/{head.epoch:x}/{head.seq}"
        told = 0
        for place, entry in enumerate(mb.queue, start=1):
            if entry.notify:
                self._tell(entry, f"queued: {_ordinal(place)} behind {ticket}, held: {reason}")
                told += 1
                if told >= _QUEUE_NOTICES:
                    return

    # -- endings --------------------------------------------------------------------------

    def expire(self, now: float) -> None:
        """Waiting messages whose ttl passed become dead letters; every mailbox is looked at
        again (a fence may have come down)."""
        for name, mb in list(self.mailboxes.items()):
            if mb.with_ttl:
                keep: deque[Entry] = deque()
                for entry in mb.queue:
                    if entry.expires <= now:
                        self.bury(name, mb, entry, Code.EXPIRED, now)
                    else:
                        keep.append(entry)
                mb.queue = keep
            self.touched.add(name)

    def bury(
        self, name: str, mb: Mailbox, entry: Entry, code: Code, now: float, detail: str = ""
    ) -> None:
        self._release(mb, entry)
        stats = self.fx.stats
        stats["dead"] += 1
        letter = (name, entry.sender, entry.epoch, entry.seq, entry.payload, code, now)
        dropped = self.dead.add(*letter)  # True: the oldest made room
        stats["dead_dropped"] += dropped
        journal = self.fx.journal
        if journal is not None:
            journal.done.append(entry.rid)
            at = now + journal.wall_offset
            journal.dead.append(DeadRow(self.dead.last_id, *letter[:5], int(code), at))
            if dropped:
                journal.dead_upto = max(journal.dead_upto, self.dead.first_id - 1)
        if entry.notify:
            status = Status.EXPIRED if code is Code.EXPIRED else Status.DEAD
            detail = detail or f"{code.name.lower()} after {entry.attempts} deliveries"
            self._notify(entry, Delivered(entry.seq, status, int(code), detail))

    def _release(self, mb: Mailbox, entry: Entry) -> None:
        size = len(entry.payload)
        mb.nbytes -= size
        self.nbytes -= size + ENTRY_COST
        self.resident -= size + ENTRY_COST
        if entry.expires < INF:
            mb.with_ttl -= 1

    def _notify(self, entry: Entry, notice: Delivered) -> None:
        sender = self.registry.by_stream.get((entry.sender, entry.epoch))
        if sender is not None:
            self.fx.send(sender.identity, [encode(notice)])
        else:
            held = self._notices.setdefault((entry.sender, entry.epoch), [])
            if len(held) < 10_000:
                held.append(notice)

    # -- after a restart -------------------------------------------------------------------

    def restore(self, puts: list[Put], spills: list[Spill]) -> None:
        """Mail the journal kept, in acceptance order, back in its mailboxes (and what stays
        on disk, counted). Limits are not applied: all of it was accepted once."""
        for put in puts:
            mb = self.mailboxes.get(put.to)
            if mb is None:
                mb = self.mailboxes[put.to] = Mailbox()
            self._take_in(mb, put)
            size = len(put.payload)
            mb.nbytes += size
            self.nbytes += size + ENTRY_COST
            self.touched.add(put.to)
        for spill in spills:
            mb = self.mailboxes.get(spill.name)
            if mb is None:
                mb = self.mailboxes[spill.name] = Mailbox()
            mb.spilled, mb.cursor = spill.count, spill.cursor
            mb.nbytes += spill.nbytes
            self.nbytes += spill.nbytes + spill.count * ENTRY_COST

    def paged_in(self, name: str, puts: list[Put], now: float) -> None:
        """A page of ``name``'s spilled mail, read back from the journal, in order."""
        mb = self.mailboxes.get(name)
        if mb is None:
            return
        mb.paging = False
        if not puts:  # the disk holds less than was counted: believe the disk
            self.fx.log("spill", f"{name}: {mb.spilled} spilled messages not on disk", now)
            held = sum(len(e.payload) for e in mb.queue)
            held += sum(len(e.payload) for _, e in mb.inflight)
            self.nbytes -= mb.nbytes - held + mb.spilled * ENTRY_COST
            mb.nbytes, mb.spilled = held, 0
            return
        for put in puts:
            self._take_in(mb, put)
        mb.spilled = max(0, mb.spilled - len(puts))
        self.touched.add(name)

    def _take_in(self, mb: Mailbox, put: Put) -> None:
        entry = Entry(
            put.sender, put.epoch, put.seq, put.payload, put.notify, put.expires,
            put.accepted, put.attempts, put.rid,
        )  # fmt: skip
        mb.queue.append(entry)
        mb.cursor = put.rid
        self.resident += len(put.payload) + ENTRY_COST
        if put.expires < INF:
            mb.with_ttl += 1

    # -- what observers see ---------------------------------------------------------------

    def peers(self, now: float) -> list[PeerItem]:
        """Receiving sessions and names with mail waiting, by name."""
        by_name, items = self.registry.by_name, []
        for name in sorted(set(by_name) | set(self.mailboxes)):
            session, mb = by_name.get(name), self.mailboxes.get(name)
            queued, inflight = (len(mb.queue) + mb.spilled, len(mb.inflight)) if mb else (0, 0)
            if session is None and not queued + inflight:
                continue
            epoch = session.epoch if session else 0
            idle = int((now - session.last_seen) * 1000) if session else 0
            state = session.state if session else ""
            waiting = mb.oldest_wait_ms(now) if mb else 0
            items.append(
                PeerItem(name, session is not None, epoch, idle, queued, inflight, state, waiting)
            )
        return items

    def drained(self) -> bool:
        """Nothing left that a connected recipient could still take."""
        for name in self.registry.by_name:
            mb = self.mailboxes.get(name)
            if mb is not None and mb.waiting:
                return False
        return True


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
