"""RouterCore: the router's decisions, minus the I/O. ``zmqswarm.router`` drives it.

Rule 1: everything that decides whether a message is accepted, where it waits, when it is
delivered, redelivered or declared dead lives here. Rule 2: no sockets, no clock: the driver
passes ``now`` and sends what ``take_output`` returns.

The shapes (``router_state``): sessions, streams and mailboxes.

A message is accepted when it enters its recipient's mailbox; the receipt says so. Mailboxes
exist for names that are offline or never seen (store and forward). A mailbox is forwarded in
order with at most ``window`` unacked deliveries; on a session change (reconnect, expiry,
takeover) its inflight deliveries go back to the front of the queue and are delivered again.
Payloads are carried as the bytes objects they arrived in: never decoded, never copied.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

from .codec import MAX_BATCH, DecodeFailure, decode, encode, valid_name
from .dead_letters import DeadLetter, DeadLetterStore
from .frames import (
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Code,
    Deliver,
    Delivered,
    DeliverItem,
    Heartbeat,
    Held,
    Hello,
    Hold,
    ListDead,
    ListPeers,
    Nack,
    Observe,
    PeerItem,
    PeerList,
    PeerState,
    Receipt,
    Send,
    Status,
    Update,
    Welcome,
)
from .inbox import MAX_NOTE
from .router_state import (
    Entry,
    Mailbox,
    Output,
    RouterOptions,
    Session,
    Stream,
    deliver_item,
)
from .send_window import INF
from .state_feed import LatencyWindow, StatePublisher

__all__ = ["DeadLetter", "Output", "RouterCore", "RouterOptions"]


log = logging.getLogger("zmqswarm.router")

_LATENCY_STRIDE = 16
DEAD = "$dead"  # the dead-letter mailbox's name; '$' names are the router's own
EXPIRED_NOTE = "expired:"  # an ack note so marked: dropped unhandled, the ttl had passed


class RouterCore:
    """``reachable(identity)`` is injected like the clock: the driver answers whether a peer's
    connection is still up (a name held by a crashed peer is then free at once)."""

    def __init__(
        self,
        *,
        epoch: int,
        options: RouterOptions | None = None,
        reachable: Callable[[bytes], bool] = lambda identity: True,
        started: float = 0.0,
    ) -> None:
        self.epoch = epoch
        self.reachable = reachable
        self.options = options or RouterOptions()
        opts = self.options
        self.publisher = StatePublisher(
            epoch, started, opts.publish_interval, opts.publish_heartbeat
        )
        self.publish_endpoints: list[str] = []  # where the driver publishes Updates
        self.latency = LatencyWindow()  # accept → ack, until the next Update
        self._updates: list[Update] = []  # made by Snapshots, not yet taken by the driver
        self.sessions: dict[bytes, Session] = {}
        self.by_name: dict[str, Session] = {}  # receiving sessions
        self.by_stream: dict[tuple[str, int], Session] = {}  # every session, by (name, epoch)
        self.streams: dict[tuple[str, int], Stream] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.dead = DeadLetterStore(self.options.dead_max)
        self.nbytes = 0
        self.draining = False
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "accepted",
                "duplicates",
                "delivered",
                "acked",
                "held",
                "redelivered",
                "dead",
                "dead_dropped",
                "bad_frames",
                "resumed",  # Hellos from a sender incarnation already known: reconnects
                "disconnected",  # sessions ended because their connection was gone
            ),
            0,
        )
        self._out: list[Output] = []
        self._touched: set[str] = set()  # mailboxes to pump
        # identity -> (stream, seqs to receipt, the stream's watermark before this turn)
        self._receipts: dict[bytes, tuple[Stream, list[int], int]] = {}
        self._last_receipt: dict[bytes, float] = {}  # identity -> when it last got one
        self._nacked: set[tuple[bytes, str]] = set()  # (identity, to) refused in this batch
        self._notices: dict[tuple[str, int], list[Delivered]] = {}  # for offline senders
        self._unwelcome: dict[bytes, float] = {}  # NOT_WELCOMED rate limit
        self._logged: dict[str, float] = {}  # log rate limit
        self._next_sweep = 0.0
        self._sessions_opened = 0

    # -- input ----------------------------------------------------------------------------

    def handle(self, identity: bytes, parts: list[bytes], now: float) -> None:
        """One multipart message from a peer (the identity part already split off)."""
        try:
            frame = decode(parts[0])
        except DecodeFailure as exc:
            self._bad(identity, exc.code, exc.detail, now)
            return
        session = self.sessions.get(identity)
        nparts = len(parts)
        if type(frame) is Send:
            if nparts != len(frame.items) + 1 or not frame.items:
                self._bad(identity, Code.BAD_FRAME, "Send part count != items + 1", now)
            elif session is None:
                self._unwelcomed(identity, now)
            else:
                session.last_seen = now
                self._on_send(session, frame, parts, now)
            return
        if nparts != 1:
            self._bad(identity, Code.BAD_FRAME, f"{type(frame).__name__} with {nparts} parts", now)
            return
        if type(frame) is Hello:
            self._on_hello(identity, frame, now)
            return
        if session is None:
            self._unwelcomed(identity, now)
            return
        session.last_seen = now
        match frame:
            case Ack(session=sid, upto=upto, notes=notes):
                if sid == session.sid and not session.send_only:
                    self._on_ack(session, upto, now, dict(notes) if notes else None)
            case Heartbeat(nonce=nonce):
                if nonce:  # a ping: the session is alive, say so (a probe's echo is ignored)
                    self._out.append((identity, [encode(Heartbeat(nonce))], 0))
            case ListDead(after=after, limit=limit, drop_upto=drop_upto):
                answer, payloads = self.dead.answer(after, limit, drop_upto, now)
                self._out.append((identity, [encode(answer), *payloads], 0))
            case ListPeers():
                self._out.append((identity, [encode(PeerList(self.peers(now)))], 0))
            case Observe():
                snap, catch_up = self.publisher.snapshot(
                    self.peers(now), dict(self.stats), self.publish_endpoints, now, self.latency
                )
                if catch_up is not None:
                    self._updates.append(catch_up)
                self._out.append((identity, [encode(snap)], 0))
            case Hold(session=sid, dseq=dseq, reason=reason):
                if sid == session.sid and not session.send_only:
                    self._on_hold(session, dseq, reason[:MAX_NOTE], now)
            case PeerState(state=state):
                if not session.send_only:
                    session.state = state[:MAX_NOTE]
            case Bye():
                self._end_session(session)
            case _:
                kind = type(frame).__name__
                self._bad(identity, Code.BAD_FRAME, f"{kind} is not accepted from peers", now)

    def take_output(self, now: float) -> list[Output]:
        """Everything to send after a batch of input: receipts, deliveries, notices."""
        out = self._out
        if self._receipts:
            self._take_receipts(now, out)
        self._nacked.clear()
        for name in self._touched:
            self._pump(name, now)
        self._touched.clear()
        self._out = []
        return out

    def _take_receipts(self, now: float, out: list[Output]) -> None:
        delay = 0.0 if self.draining else self.options.receipt_delay
        batch, last = self.options.receipt_batch, self._last_receipt
        receipts = self._receipts
        for identity in list(receipts):
            stream, touched, wm_before = receipts[identity]
            waiting = stream.wm - wm_before + len(touched)
            if waiting > 0 and now - last.get(identity, -INF) < delay and waiting < batch:
                continue  # not due yet: next_deadline() says when
            del receipts[identity]
            if waiting > 0:  # else nothing was accepted: nothing to say
                fresh = sorted(s for s in touched if s > stream.wm)
                out.append((identity, [encode(Receipt(stream.wm, fresh))], 0))
                last[identity] = now

    def undeliver(self, identity: bytes, first_dseq: int) -> None:
        """The driver could not send the Deliver starting at ``first_dseq`` (peer gone or its
        queue full): put those messages back at the front of the mailbox."""
        session = self.sessions.get(identity)
        if session is None:
            return
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
        self.stats["delivered"] -= len(back)  # counted when made: they never left

    # -- timers ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Timers: ttls of waiting mail, fenced mailboxes coming free, forgotten senders.
        Sessions do not time out here: a session ends when its peer says Bye, another Hello
        replaces it, or its connection is gone (``peer_gone``)."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP
        for name, mb in list(self.mailboxes.items()):
            if mb.with_ttl:
                self._expire(name, mb, now)
            self._touched.add(name)
        stale = [k for k, s in self.streams.items() if now - s.last_seen > self.options.stream_ttl]
        for key in stale:
            del self.streams[key]
        if len(self._unwelcome) > 10_000:
            self._unwelcome.clear()

    def peer_gone(self, identity: bytes) -> None:
        """The driver found the peer's connection gone (a send failed with EHOSTUNREACH): end
        its session now. Its unacked mail goes back to the front of its mailbox, for whoever
        holds the name next."""
        session = self.sessions.get(identity)
        if session is not None:
            self.stats["disconnected"] += 1
            self._end_session(session)

    def probe_targets(self) -> list[bytes]:
        """Whom to probe after the driver saw a connection drop: every session, since the
        drop names no peer. A probe costs the router a send and a live peer a wake-up."""
        return list(self.sessions)

    def next_deadline(self) -> float:
        due = self._next_sweep
        if self._receipts:
            delay, last = self.options.receipt_delay, self._last_receipt
            due = min(due, min(last.get(i, -INF) + delay for i in self._receipts))
        return due

    def take_updates(self, now: float) -> tuple[Update, ...]:
        """The Updates to publish for observers, in order (see observe.py): those a Snapshot
        made this turn, then the periodic one when it is due. Asked every turn: two
        comparisons when there is nothing to publish."""
        if now >= self.publisher.next_at:
            update = self.publisher.update(self.peers(now), self.stats, now, self.latency)
            if update is not None:
                self._updates.append(update)
        if not self._updates:
            return ()
        updates = tuple(self._updates)
        self._updates.clear()
        return updates

    def begin_drain(self) -> None:
        """Stop accepting (Nack SHUTTING_DOWN); keep delivering what is held."""
        self.draining = True

    def drained(self) -> bool:
        """Nothing left that a connected recipient could still take."""
        for name in self.by_name:
            mb = self.mailboxes.get(name)
            if mb is not None and (mb.queue or mb.inflight):
                return False
        return True

    # -- sessions -------------------------------------------------------------------------

    def _on_hello(self, identity: bytes, hello: Hello, now: float) -> None:
        if hello.version != PROTOCOL_VERSION:
            reason = f"protocol version {hello.version} not supported (want {PROTOCOL_VERSION})"
            self._nack(identity, 0, Code.BAD_VERSION, reason)
            return
        if not valid_name(hello.name):
            self._nack(identity, 0, Code.INVALID_NAME, f"invalid peer name {hello.name!r}")
            return
        holder = None if hello.send_only else self.by_name.get(hello.name)
        if holder is not None and holder.identity != identity:
            alive = self.reachable(holder.identity)
            if alive and not hello.takeover:
                reason = f"{hello.name!r} is held by a live peer; connect with takeover to take it"
                self._nack(identity, 0, Code.NAME_TAKEN, reason)
                self._log("name_taken", f"refused a second {hello.name!r}", now)
                return
            self._end_session(holder)
            if alive:
                self._nack(holder.identity, 0, Code.TAKEN_OVER, "another peer took this name over")
                mb = self.mailboxes.get(hello.name)
                if mb is not None:  # the old holder may hand out what it took until then
                    mb.fenced_until = now + self.options.heartbeat_timeout
        old = self.sessions.get(identity)
        if old is not None and old.name == hello.name and hello.attempt <= old.hello:
            return  # a stale copy of a Hello already answered
        resumed = old is not None and old.sid == hello.resume
        if old is not None:
            self._end_session(old)  # a resume: what was out goes again, numbered anew
        self._sessions_opened += 1
        sid = self._sessions_opened
        session = Session(
            identity,
            hello.name,
            hello.epoch,
            max(1, hello.window),
            now,
            sid,
            hello.attempt,
            send_only=hello.send_only,
        )
        self.sessions[identity] = session
        self.by_stream[hello.name, hello.epoch] = session
        if not hello.send_only:
            self.by_name[hello.name] = session
        stream = self.streams.get((hello.name, hello.epoch))
        if stream is not None:
            self.stats["resumed"] += 1  # it lost us (or we it) and resumes its numbering
        acked = stream.wm if stream else 0
        o = self.options
        welcome = Welcome(
            PROTOCOL_VERSION, self.epoch, sid, acked, int(o.heartbeat * 1000), o.max_payload,
            hello.attempt, 0, resumed, int(o.heartbeat_timeout * 1000),
        )  # fmt: skip
        self._out.append((identity, [encode(welcome)], 0))
        for notice in self._notices.pop((hello.name, hello.epoch), []):
            self._out.append((identity, [encode(notice)], 0))
        if not hello.send_only:
            self._touched.add(hello.name)

    def _end_session(self, session: Session) -> None:
        self.sessions.pop(session.identity, None)
        self._last_receipt.pop(session.identity, None)
        if self.by_stream.get((session.name, session.epoch)) is session:
            del self.by_stream[session.name, session.epoch]
        if session.send_only:
            return
        self._requeue_inflight(session)
        if self.by_name.get(session.name) is session:
            del self.by_name[session.name]

    def _requeue_inflight(self, session: Session) -> None:
        mb = self.mailboxes.get(session.name)
        if mb is not None and mb.inflight:
            mb.queue.extendleft(entry for _, entry in reversed(mb.inflight))
            self.stats["redelivered"] += len(mb.inflight)
            mb.inflight.clear()
            mb.inflight_bytes = 0
        session.dseq = 0

    # -- accepting ------------------------------------------------------------------------

    def _on_send(self, session: Session, frame: Send, parts: list[bytes], now: float) -> None:
        identity = session.identity
        key = (session.name, session.epoch)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = Stream(frame.base - 1, set(), now)
        stream.last_seen = now
        receipt = self._receipts.get(identity)
        if receipt is None:
            receipt = self._receipts[identity] = (stream, [], stream.wm)
        if frame.base - 1 > stream.wm:
            stream.wm = frame.base - 1
            stream.above = {s for s in stream.above if s > stream.wm}
        fresh = receipt[1]
        o = self.options
        mailboxes, stats, nacked = self.mailboxes, self.stats, self._nacked
        for item, payload in zip(frame.items, parts[1:], strict=True):
            seq = item.seq
            if seq <= stream.wm or seq in stream.above:
                stats["duplicates"] += 1
                fresh.append(seq)
                continue
            to = item.to
            if self.draining:
                self._refuse(identity, seq, to, Code.SHUTTING_DOWN, len(payload), now)
                continue
            prev = item.prev
            if prev > stream.wm and prev not in stream.above:
                if (identity, to) not in nacked:
                    nacked.add((identity, to))
                    self._nack(identity, seq, Code.OUT_OF_ORDER, f"waiting for seq {prev}")
                continue
            mb = mailboxes.get(to)
            if mb is None:
                code = self._refuse_new_mailbox(to)
                if code is not None:
                    self._refuse(identity, seq, to, code, len(payload), now)
                    continue
                mb = mailboxes[to] = Mailbox()
            size = len(payload)
            if (
                size > o.max_payload
                or len(mb.queue) + len(mb.inflight) >= o.mailbox_max_messages
                or mb.nbytes + size > o.mailbox_max_bytes
                or self.nbytes + size > o.max_bytes
            ):
                self._refuse(identity, seq, to, self._why_full(mb, size), size, now)
                continue
            expires = now + item.ttl_ms / 1000 if item.ttl_ms > 0 else INF
            entry = Entry(session.name, session.epoch, seq, payload, item.notify, expires, now)
            mb.queue.append(entry)
            mb.nbytes += size
            self.nbytes += size
            if item.ttl_ms > 0:
                mb.with_ttl += 1
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
            self._touched.add(to)

    def _refuse_new_mailbox(self, to: str) -> Code | None:
        if not valid_name(to):
            return Code.INVALID_NAME
        if len(self.mailboxes) >= self.options.max_mailboxes:
            return Code.ROUTER_FULL
        return None

    def _why_full(self, mb: Mailbox, size: int) -> Code:
        o = self.options
        if size > o.max_payload:
            return Code.TOO_LARGE
        if self.nbytes + size > o.max_bytes:
            return Code.ROUTER_FULL
        return Code.MAILBOX_FULL

    def _refuse(
        self, identity: bytes, seq: int, to: str, code: Code, size: int, now: float
    ) -> None:
        if code.retriable:
            if (identity, to) in self._nacked:
                return  # one retriable refusal per pair per batch: the sender resends the chain
            self._nacked.add((identity, to))
            self._nack(identity, seq, code, f"{to}: {code.name.lower()}", self.options.retry_ms)
        else:
            detail = f"{size} bytes > {self.options.max_payload}" if code is Code.TOO_LARGE else to
            self._nack(identity, seq, code, detail)
        self._log(code.name, f"refused seq {seq} to {to!r}: {code.name}", now)

    # -- delivering -----------------------------------------------------------------------

    def _pump(self, name: str, now: float) -> None:
        mb = self.mailboxes.get(name)
        if mb is None:
            return
        session = self.by_name.get(name)
        if session is None:
            if not mb.queue and not mb.inflight:
                del self.mailboxes[name]
            return
        if mb.fenced_until > now:
            return  # tick() touches it again once the fence is down
        queue, inflight = mb.queue, mb.inflight
        room = session.window - len(inflight)
        max_attempts = self.options.max_attempts
        byte_cap = self.options.max_inflight_bytes
        while room > 0 and queue:
            items: list[DeliverItem] = []
            parts: list[bytes] = [b""]
            first = session.dseq + 1
            limit = min(room, MAX_BATCH)
            while queue and len(items) < limit:  # per message: locals, no attribute churn
                if mb.inflight_bytes >= byte_cap and (items or inflight):
                    room = 0  # the byte credit is spent: wait for acks
                    break
                entry = queue.popleft()
                if entry.expires <= now or entry.attempts >= max_attempts:
                    code = Code.EXPIRED if entry.expires <= now else Code.MAX_ATTEMPTS
                    self._bury(name, mb, entry, code, now)
                    continue
                entry.attempts += 1
                dseq = session.dseq = session.dseq + 1
                inflight.append((dseq, entry))
                mb.inflight_bytes += len(entry.payload)
                items.append(deliver_item(dseq, entry, now))
                parts.append(entry.payload)
            if not items:
                break
            parts[0] = encode(Deliver(session.sid, items))
            self._out.append((session.identity, parts, first))
            room = max(0, room - len(items)) if room else 0
            self.stats["delivered"] += len(items)

    def _on_ack(
        self, session: Session, upto: int, now: float, notes: dict[int, str] | None = None
    ) -> None:
        mb = self.mailboxes.get(session.name)
        if mb is None:
            return
        inflight = mb.inflight
        acked = 0
        record = self.latency.record
        # Time every message of a small ack, every 16th of a big one (standing for 16): a
        # record costs ~0.35 us, a fifth of the core's whole work a message at full speed.
        stride = _LATENCY_STRIDE if inflight and upto - inflight[0][0] >= _LATENCY_STRIDE else 1
        while inflight and inflight[0][0] <= upto:
            dseq, entry = inflight.popleft()
            mb.inflight_bytes -= len(entry.payload)
            acked += 1
            if dseq % stride == 0:
                record(now - entry.accepted, stride)
            if notes:
                note = notes.get(dseq, "")
                if note.startswith(EXPIRED_NOTE):
                    # The recipient dropped it unhandled: its ttl passed while it waited there.
                    self._bury(session.name, mb, entry, Code.EXPIRED, now, note)
                    continue
            else:
                note = ""
            self._release(mb, entry)
            if entry.notify:
                self._notify(entry, Delivered(entry.seq, Status.DELIVERED, detail=note))
        if acked:
            self.stats["acked"] += acked
        self._touched.add(session.name)

    def _on_hold(self, session: Session, dseq: int, reason: str, now: float) -> None:
        mb = self.mailboxes.get(session.name)
        if mb is None:
            return
        for number, entry in mb.inflight:
            if number == dseq:
                self.stats["held"] += 1
                sender = self.by_stream.get((entry.sender, entry.epoch))
                if entry.notify and sender is not None:
                    self._out.append((sender.identity, [encode(Held(entry.seq, reason))], 0))
                return

    def peers(self, now: float) -> list[PeerItem]:
        """Receiving sessions and names with mail waiting, by name."""
        items = []
        for name in sorted(set(self.by_name) | set(self.mailboxes)):
            session, mb = self.by_name.get(name), self.mailboxes.get(name)
            queued, inflight = (len(mb.queue), len(mb.inflight)) if mb else (0, 0)
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

    def _release(self, mb: Mailbox, entry: Entry) -> None:
        size = len(entry.payload)
        mb.nbytes -= size
        self.nbytes -= size
        if entry.expires < INF:
            mb.with_ttl -= 1

    def _bury(
        self, name: str, mb: Mailbox, entry: Entry, code: Code, now: float, detail: str = ""
    ) -> None:
        self._release(mb, entry)
        self.stats["dead"] += 1
        letter = (name, entry.sender, entry.epoch, entry.seq, entry.payload, code, now)
        self.stats["dead_dropped"] += self.dead.add(*letter)  # True: the oldest made room
        if entry.notify:
            status = Status.EXPIRED if code is Code.EXPIRED else Status.DEAD
            detail = detail or f"{code.name.lower()} after {entry.attempts} deliveries"
            self._notify(entry, Delivered(entry.seq, status, int(code), detail))

    def _expire(self, name: str, mb: Mailbox, now: float) -> None:
        keep: deque[Entry] = deque()
        for entry in mb.queue:
            if entry.expires <= now:
                self._bury(name, mb, entry, Code.EXPIRED, now)
            else:
                keep.append(entry)
        mb.queue = keep

    def _notify(self, entry: Entry, notice: Delivered) -> None:
        sender = self.by_stream.get((entry.sender, entry.epoch))
        if sender is not None:
            self._out.append((sender.identity, [encode(notice)], 0))
        else:
            held = self._notices.setdefault((entry.sender, entry.epoch), [])
            if len(held) < 10_000:
                held.append(notice)

    # -- refusals and bad input -----------------------------------------------------------

    def _nack(self, identity: bytes, seq: int, code: Code, reason: str, retry_ms: int = 0) -> None:
        key = f"nack_{code.name.lower()}"
        self.stats[key] = self.stats.get(key, 0) + 1
        self._out.append((identity, [encode(Nack(seq, int(code), reason, retry_ms))], 0))

    def _unwelcomed(self, identity: bytes, now: float) -> None:
        # After a router restart every queued frame of a peer lands here: answer once a second.
        if now - self._unwelcome.get(identity, -INF) >= 1.0:
            self._unwelcome[identity] = now
            self._nack(identity, 0, Code.NOT_WELCOMED, "say Hello first")

    def _bad(self, identity: bytes, code: Code, detail: str, now: float) -> None:
        self.stats["bad_frames"] += 1
        self._nack(identity, 0, code, detail)
        self._log("bad_frame", f"bad frame from {identity!r}: {code.name}: {detail}", now)

    def _log(self, key: str, message: str, now: float) -> None:
        """Log once per key per 10 s; counters carry the totals."""
        if now - self._logged.get(key, -INF) >= 10.0:
            self._logged[key] = now
            log.warning("%s (further ones for 10 s only counted)", message)


_SWEEP = 0.25  # seconds between timer sweeps (ttls, fences, stale streams)
