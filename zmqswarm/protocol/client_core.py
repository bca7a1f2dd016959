"""ClientCore: everything a peer does, minus the I/O. Both clients drive it.

Feed it frames (``receive``) and what the connection did (``link_down``, ``link_up``), tell it
the time (``tick``), ask it what to send (``outgoing``), which message the application may
have now (``take_message``) and what else happened (``events``). It never blocks, never
sleeps and never touches a socket: time is always passed in.

Rule 1: every decision about the session lives here; the drivers only move bytes and wait.
Rule 2: the state changes only through ``TRANSITIONS``; a call the current state does not
allow raises ``LocalProtocolError``.

::

    NEW ──connect──► HELLO ──welcome──► READY ──close──► CLOSED
                       ▲ │                │
                       │ └─────lost───────┤   lost: the connection dropped, the router forgot
                       └──────────────────┘   the session, or deliveries came with a gap
                    HELLO, READY ──refused──► REFUSED   (name taken, taken over, bad version)

Liveness is not this module's job: libzmq's ZMTP heartbeats keep a connection up while the
process lives (its Python thread may be busy for minutes) and drop it when the process stops
or the network dies; the driver reports that as ``link_down``. What this module adds is the
lease (lease.py): nothing is handed over unless the router has lately confirmed the session.
"""

from __future__ import annotations

import random
from collections import deque

from zmqswarm.errors import LocalProtocolError

from .client_events import Accepted, Event, Notified, Progressed, Refused, SessionDown, SessionUp
from .codec import MAX_BATCH, NAME_RULE, AnyFrame, DecodeFailure, decode, encode, valid_name
from .frames import (
    PROTOCOL_VERSION,
    Ack,
    Bye,
    Code,
    Deliver,
    Delivered,
    Heartbeat,
    Held,
    Hello,
    Hold,
    Nack,
    PeerState,
    Receipt,
    Send,
    SendItem,
    Welcome,
)
from .handshakes import DOWN, UP, Handshakes
from .inbox import MAX_NOTE, Inbound, Inbox, MessageKey
from .lease import Lease
from .options import ClientOptions
from .packing import pack_limit, packed, payloads_of
from .publishing import Publishing
from .send_window import INF, Outgoing, SendWindow

__all__ = ["TRANSITIONS", "ClientCore"]

NEW, HELLO, READY, CLOSED, REFUSED = "new", "hello", "ready", "closed", "refused"

TRANSITIONS: dict[str, dict[str, str]] = {
    "connect": {NEW: HELLO},
    "welcome": {HELLO: READY},
    "lost": {HELLO: HELLO, READY: HELLO},
    "refused": {HELLO: REFUSED, READY: REFUSED},
    "close": {NEW: CLOSED, HELLO: CLOSED, READY: CLOSED, REFUSED: CLOSED},
}
"""event -> {state it may happen in: the state it leads to}."""


_REFUSALS = frozenset(
    {Code.NAME_TAKEN, Code.TAKEN_OVER, Code.BAD_VERSION, Code.INVALID_NAME}
    | {Code.NOT_ALLOWED, Code.REVOKED}
)
"""Session-level Nacks that end a client for good: retrying cannot change the answer."""


class ClientCore:
    def __init__(
        self,
        name: str,
        *,
        epoch: int,
        options: ClientOptions | None = None,
        seed: int = 0,
        hellos: int = 0,
    ) -> None:
        """``hellos``: Hello attempts the stream (name, epoch) used before this process (a
        spool's): the router ignores a Hello whose attempt is not above its session's."""
        if not valid_name(name):
            raise ValueError(f"invalid peer name {name!r}: {NAME_RULE}")
        self.name = name
        self.epoch = epoch
        self.options = opts = options or ClientOptions()
        self.window = SendWindow(
            window=opts.max_outbox,
            resend_after=opts.resend_after,
            max_resend_after=opts.max_resend_after,
            max_attempts=opts.max_attempts,
            rng=random.Random(seed or epoch),
        )
        self.inbox = Inbox()
        self.state = NEW
        self.router_epoch = 0
        self.refusal: Refused | None = None
        self.peer_state = ""  # what set_state() last said
        self.bad_frames = 0  # a router never sends garbage: counted, then ignored
        self.fenced = 0  # messages taken under a session the router had ended: never handed
        self._out: list[list[bytes]] = []
        self._events: list[Event] = []
        self._received: deque[Inbound] = deque()  # taken, not yet handed to the application
        self._awaiting: set[int] = set()  # accepted tickets waiting for a Delivered notice
        self._last_ack = -INF
        self._ack_batch = max(1, opts.recv_window // 4)
        self._hello_due = INF
        self._hello_tries = 0
        self._hellos = hellos  # every Hello sent: the Welcome must echo the latest
        self._hello_at = 0.0  # when the latest Hello left
        self.lease = Lease(opts.heartbeat_timeout / 2, opts.heartbeat_timeout)
        self._link_down = False  # the connection dropped; Hello again once it is back
        self._resume = 0  # the session a Hello on a new connection asks to resume
        self.handshakes = Handshakes()
        self._dropped: set[int] = set()  # sessions whose Deliver came while we said Hello
        self._pack_limit = 0  # bytes a packed Send part may hold (0: the router takes none)
        self.publishing = Publishing(opts.max_topic_value, opts.publish_delay or 0.0)

    # -- the state machine ----------------------------------------------------------------

    def _transition(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[event][self.state]
        except KeyError:
            raise LocalProtocolError(f"{event!r} is not allowed in state {self.state!r}") from None

    @property
    def ready(self) -> bool:
        return self.state == READY

    # -- driver API -----------------------------------------------------------------------

    def connect(self, now: float) -> None:
        self._transition("connect")
        self._say_hello(now)

    def link_event(self, what: str, now: float) -> None:
        """What the connection monitor reported (protocol/handshakes.py)."""
        refusal = self.handshakes.event(what)
        if refusal is not None:
            self.auth_refused(refusal)
        elif what == UP:
            self.link_up(now)
        elif what == DOWN:
            self.link_down(now)

    def link_down(self, now: float) -> None:
        """The connection dropped (libzmq reconnects by itself): hand nothing over until a new
        Welcome says whether the name stayed ours, and Hello again once the link is back."""
        if self.state in (HELLO, READY):
            self._link_down = True
            self._lost("the connection dropped", now, hello=False)

    def link_up(self, now: float) -> None:
        """A connection (re)opened: after a drop, say Hello on it at once."""
        if self._link_down and self.state == HELLO:
            self._link_down = False
            self._hello_tries = 0
            # Nothing is taken for the old session on the new connection: a router that has
            # not seen the old one go (or a new router, whose session numbers start again)
            # may still deliver under that number. What the session had out comes again
            # after the Welcome.
            self._resume = self._resume or self.inbox.session
            self.inbox.session = 0
            self._say_hello(now)

    def submit(
        self,
        to: str,
        payloads: list[bytes],
        now: float,
        *,
        notify: bool = False,
        ttl_ms: int = 0,
    ) -> list[int]:
        """Queue messages for ``to``; return their seqs. Every argument is checked before any
        message is queued: ValueError names the bad one."""
        self.check(to, payloads)
        window_submit = self.window.submit
        return [window_submit(to, p, now, notify, ttl_ms) for p in payloads]

    def check(self, to: str, payloads: list[bytes]) -> None:
        """What ``submit`` checks first: ValueError (or LocalProtocolError after close)."""
        if self.state == CLOSED:
            raise LocalProtocolError("submit after close")
        if not valid_name(to):
            raise ValueError(f"invalid recipient name {to!r}: {NAME_RULE}")
        limit = self.options.max_payload
        for payload in payloads:
            if len(payload) > limit:
                raise ValueError(f"payload of {len(payload)} bytes > max_payload {limit}")

    def publish(self, topic: str, payload: bytes, now: float, *, ttl_ms: int = 0) -> None:
        """Publish the latest value of ``topic``: it leaves with the next ``outgoing`` once
        ``publish_delay`` has passed since the last Publish frame, or once a session is up (only
        the latest per topic waits), or at ``close``. No answer, at most once.
        A restarted router (a new incarnation's Welcome) is given the last value of every
        topic this client published again (its ttl starts again)."""
        if self.state == CLOSED:
            raise LocalProtocolError("publish after close")
        self.publishing.put(topic, payload, ttl_ms)

    def resume(
        self, next_seq: int, unsent: list[tuple[int, str, bytes, bool, int]], now: float
    ) -> None:
        """Carry on the stream an earlier process began: see ``SendWindow.resume``."""
        self.window.resume(next_seq, unsent, now)

    @property
    def hellos(self) -> int:
        """Hello attempts used so far (this process's and, resumed, its stream's before)."""
        return self._hellos

    def take_message(self, now: float) -> Inbound | None:
        """The next message for the application, if it may have one now: the session is up
        and its lease holds. A lease past half its span is renewed ahead (a ping), so a steady
        stream never waits; after a silence the first message waits for one round trip."""
        if not self._received or self.state != READY:
            return None
        lease = self.lease
        if lease.wants_ping(now):
            self._send_ping(now)
        if not lease.holds(now):
            return None
        return self._received.popleft()

    def deliverable(self, now: float) -> bool:
        """Whether ``take_message`` would hand a message over now (no side effects)."""
        return bool(self._received) and self.state == READY and self.lease.holds(now)

    @property
    def has_output(self) -> bool:
        """Frames wait to be sent (``outgoing``): a ping the hand-over gate asked for."""
        return bool(self._out)

    @property
    def received_waiting(self) -> int:
        """Messages taken from the router and not yet handed to the application."""
        return len(self._received)

    def ack(self, key: MessageKey, note: str = "") -> None:
        self.inbox.ack(key, note)

    def set_state(self, state: str, now: float) -> None:
        """Tell the router what this peer is doing (shown by ``zs peers``); kept and said
        again after every reconnect."""
        self.peer_state = state[:MAX_NOTE]
        if self.state == READY or (self.state == HELLO and not self._link_down):
            self._emit([encode(PeerState(self.peer_state))])  # after a Hello: its session's

    def hold(self, key: MessageKey, reason: str, now: float) -> None:
        """Tell the router the application holds message ``key`` for ``reason`` (not an ack)."""
        dseq = self.inbox.dseq_of(key)
        if dseq and self.state == READY:
            self._emit([encode(Hold(self.inbox.session, dseq, reason[:MAX_NOTE]))])

    def receive(self, parts: list[bytes], now: float) -> None:
        """Feed one multipart message from the router."""
        try:
            frame: AnyFrame = decode(parts[0])
        except DecodeFailure:
            self.bad_frames += 1
            return
        match frame:
            case Receipt(upto=upto, seqs=seqs):
                self._accepted(*self.window.on_receipt(upto, seqs))
            case Deliver():
                self._on_deliver(frame, parts, now)
            case Heartbeat(nonce=nonce):
                if self.state == READY:
                    self.lease.echoed(nonce)
            case Held(seq=seq, reason=reason):
                self._events.append(Progressed(seq, reason))
            case Delivered(seq=seq, status=status, code=code, detail=detail):
                self._awaiting.discard(seq)
                self._events.append(Notified(seq, status, code, detail))
            case Nack(seq=seq, code=code, reason=reason, retry_ms=retry_ms):
                self._on_nack(seq, code, reason, retry_ms, now)
            case Welcome():
                self._on_welcome(frame, now)
            case _:
                pass  # kinds a router never sends to a peer: ignore

    def tick(self, now: float) -> None:
        """Fire timers: resends, expiries, a Hello or a ping that got no answer."""
        self._events.extend(self.window.tick(now))
        if self.state == HELLO and not self._link_down and now >= self._hello_due:
            self._say_hello(now)
        elif now >= self.lease.ping_due():
            self._send_ping(now)  # lost with a dropped connection: ask again

    def next_deadline(self) -> float:
        if self.state == READY:
            due = self.ack_due()
            due = min(due, self.lease.ping_due())
            if self.publishing.pending:
                due = min(due, self.publishing.due)
        elif self.state == HELLO and not self._link_down:  # else link_up says Hello
            due = self._hello_due
        else:
            due = INF
        return min(due, self.window.next_deadline())

    def ack_due(self) -> float:
        """When the Ack owed for what was acked so far must leave: the one deadline that
        ``ack()`` can bring forward (``next_deadline()`` for the price of a subtraction)."""
        inbox = self.inbox
        backlog = inbox.ack_backlog
        if backlog >= self._ack_batch or (backlog and inbox.urgent):
            return 0.0  # credit to return, or a sender waiting on the outcome
        return self._last_ack + self.options.ack_delay if backlog else INF

    def outgoing(self, now: float) -> list[list[bytes]]:
        """Multipart messages to send now, in order. Messages follow a Hello at once, before
        its Welcome: the router takes a connection's frames in order, so they land in the
        new session (a send right after connecting leaves at once, not on a later call)."""
        if self.state == READY:
            if now >= self.ack_due():
                self._send_ack(now)
        if self.state == READY or (self.state == HELLO and not self._link_down):
            window = self.window
            limit = self._pack_limit
            while batch := window.take(now, MAX_BATCH):
                if limit:
                    self._emit_packed(batch, limit)
                else:
                    self._emit_send(window.base, batch, pack=False)
                if len(batch) < MAX_BATCH:
                    break  # it stopped short: nothing more may leave now
            self._out.extend(self.publishing.frames(now))
        out, self._out = self._out, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def close(self, now: float) -> None:
        if self.state == READY:
            self._send_ack(now)  # what was handed over must not come again
            self._out.extend(self.publishing.frames(now, now_or_never=True))  # a burst's last
        if self.state in (HELLO, READY):
            self._emit([encode(Bye())])
        self._transition("close")

    # -- internals ------------------------------------------------------------------------

    def _emit(self, parts: list[bytes]) -> None:
        self._out.append(parts)

    def _emit_packed(self, batch: list[Outgoing], limit: int) -> None:
        """``batch`` as packed Sends, each part ``limit`` bytes at most (or one payload)."""
        base, start, size = self.window.base, 0, 0
        for i, m in enumerate(batch):
            n = len(m.payload)
            if size + n > limit and i > start:
                self._emit_send(base, batch[start:i], pack=True)
                start, size = i, 0
            size += n
        self._emit_send(base, batch[start:], pack=True)

    def _emit_send(self, base: int, run: list[Outgoing], pack: bool) -> None:
        """One Send for ``run``: its payloads packed in one part, or a part each."""
        items = [SendItem(m.seq, m.to, m.prev, m.notify, m.ttl_ms) for m in run]
        payloads = [m.payload for m in run]
        if pack:
            sizes, body = packed(payloads)
            self._emit([encode(Send(base, items, sizes)), body])
        else:
            self._emit([encode(Send(base, items)), *payloads])

    def _send_ack(self, now: float) -> None:
        upto = self.inbox.pending_ack()
        if upto is not None:
            notes = self.inbox.take_notes(upto)
            self._emit([encode(Ack(self.inbox.session, upto, notes))])
            self._last_ack = now

    def _send_ping(self, now: float) -> None:
        self._emit([encode(Heartbeat(self.lease.new_ping(now)))])

    def _on_deliver(self, frame: Deliver, parts: list[bytes], now: float) -> None:
        if self.state == HELLO:
            # Read after the connection dropped, it arrived before: still this session's.
            # Taken (not handed over): the Welcome decides whether the name stayed ours.
            if frame.session != self.inbox.session or not self.router_epoch:
                # An older session's comes again after the Welcome; a newer one's, that
                # overtook its Welcome, would not: the Welcome then starts a session anew.
                self._dropped.add(frame.session)
                return
        elif self.state != READY:
            return
        elif frame.session > self.inbox.session:
            # The router opened a session whose Welcome we never saw: start again.
            self._lost("missed a Welcome", now)
            return
        payloads = payloads_of(frame.sizes, len(frame.items), parts)
        if payloads is None:
            self.bad_frames += 1
            return
        inbox = self.inbox
        self._received.extend(inbox.on_deliver(frame, payloads, now))
        if inbox.gap:
            self._lost("deliveries came with a gap", now)

    def _say_hello(self, now: float) -> None:
        o = self.options
        self._hellos += 1
        resume = (self.inbox.session or self._resume) if self.router_epoch else 0
        # Take the name over only to start: a reconnect that did so would take it back from
        # the peer that replaced this one while it was stopped.
        takeover = o.takeover and not self.router_epoch
        hello = Hello(PROTOCOL_VERSION, self.name, self.epoch, o.recv_window, takeover,
                      self._hellos, o.send_only, resume, True)  # fmt: skip
        self._pack_limit = 0  # until this Hello's Welcome says how its router takes Sends
        self._emit([encode(hello)])
        self._hello_at = now
        self._hello_tries += 1
        self._hello_due = now + min(o.heartbeat_timeout * 2 ** min(self._hello_tries - 1, 3), 5.0)

    def _on_welcome(self, frame: Welcome, now: float) -> None:
        if self.state != HELLO or frame.attempt != self._hellos:
            return  # not the answer to our latest Hello
        known = max(self.inbox.session, self._resume)
        if (frame.router_epoch, frame.session) <= (self.router_epoch, known):
            return  # a stale Welcome (an earlier router or session)
        restarted = self.router_epoch not in (0, frame.router_epoch)
        if self.router_epoch == frame.router_epoch and not frame.resumed and self._received:
            # The router ended our session before this Hello: another peer may have taken
            # the name and the mail meanwhile. What we took and never handed over comes again.
            self.fenced += len(self._received)
            self.inbox.forget(list(self._received))
            self._received.clear()
        self._transition("welcome")
        self._pack_limit = pack_limit(frame.max_payload) if frame.packed else 0
        self.router_epoch = frame.router_epoch
        span = None
        if frame.liveness_ms:
            span = min(frame.liveness_ms / 1000, self.options.heartbeat_timeout) / 2
        self.lease.confirmed(self._hello_at, span)
        self._hello_tries = 0
        self._hello_due = INF
        self._accepted(*self.window.on_receipt(frame.acked, ()))
        self.window.requeue_sent_before(self._hello_at)
        self.inbox.reset_session(frame.session)
        self._resume = 0
        if restarted and self._awaiting:
            # The old router took these; whether they were delivered died with it.
            for seq in sorted(self._awaiting):
                detail = "router restarted before the delivery was confirmed"
                self._events.append(Notified(seq, "unknown", 0, detail))
            self._awaiting.clear()
        if self.peer_state:
            self._emit([encode(PeerState(self.peer_state))])  # a new session knows none
        if restarted:
            self.publishing.router_restarted()
        self._events.append(SessionUp(frame.router_epoch))
        overtaken, self._dropped = frame.session in self._dropped, set()
        if overtaken:  # what that Deliver carried is out to us: have the router resend it
            self._lost("a Deliver came before its Welcome", now)

    def auth_refused(self, reason: str) -> None:
        """The connection's handshake failed for good (the router refused our CURVE key, or
        one side uses CURVE and the other not): no session can open, ever, as we are."""
        if self.state in (HELLO, READY):
            self._transition("refused")
            self.refusal = Refused(Code.NOT_ALLOWED, reason)
            self._events.append(self.refusal)

    def _on_nack(self, seq: int, code_int: int, reason: str, retry_ms: int, now: float) -> None:
        try:
            code = Code(code_int)
        except ValueError:
            code = Code.BAD_FRAME
        if seq:
            self._events.extend(self.window.on_nack(seq, code, reason, retry_ms, now))
        elif code is Code.NOT_WELCOMED:
            if self.state == READY:
                self._lost("the router ended the session (restarted, or we went silent)", now)
        elif code in _REFUSALS:
            if self.state in (HELLO, READY):
                self._transition("refused")
                self.refusal = Refused(code, reason)
                self._events.append(self.refusal)
        # Any other session-level Nack (BAD_FRAME...) reports a bug of ours; nothing to undo.

    def _lost(self, reason: str, now: float, *, hello: bool = True) -> None:
        self._transition("lost")
        self.lease.lost()
        self._events.append(SessionDown(reason))
        self._hello_tries = 0
        if hello:
            self._say_hello(now)
        else:
            # No Hello until link_up: one said now would wait in libzmq's queue for the next
            # connection, arrive stale, and open a session that the next Hello ends.
            self._hello_due = INF

    def _accepted(self, seqs: list[int], notify: list[int]) -> None:
        if seqs:
            self._awaiting.update(notify)
            self._events.append(Accepted(seqs))
