"""ClientCore: everything a peer does, minus the I/O. Client and AsyncClient drive it.

Feed it frames (``receive``), tell it the time (``tick``), ask it what to send (``outgoing``),
what arrived (``take_received``) and what else happened (``events``). It never blocks, never
sleeps and never touches a socket.

Session states::

    new ──connect()──► hello ──Welcome──► ready ──close()──► closed
                         ▲                  │
                         └──router lost /───┘        Nack NAME_TAKEN / TAKEN_OVER /
                            NOT_WELCOMED                BAD_VERSION ──► refused
"""

from __future__ import annotations

import random

import msgspec

from zmqswarm.errors import LocalProtocolError

from .codec import MAX_BATCH, DecodeFailure, decode, encode, valid_name
from .frames import (
    PROTOCOL_VERSION,
    Ack,
    AnyFrame,
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
from .inbox import MAX_NOTE, Inbound, Inbox, MessageKey
from .send_window import INF, Failed, SendWindow

__all__ = [
    "ClientCore",
    "ClientOptions",
    "Event",
    "Notified",
    "Progressed",
    "Refused",
    "SessionDown",
    "SessionUp",
    "Accepted",
    "Failed",
]


class ClientOptions(msgspec.Struct, frozen=True):
    """Tuning of one peer. The defaults suit a local router; all are keyword-only overrides
    on Client/AsyncClient."""

    window: int = 4096  # unreceipted messages on the wire at once
    recv_window: int = 8192  # unacked deliveries the router may have out to us (credit)
    max_outbox: int = 100_000  # unreceipted messages held before send() pushes back
    max_payload: int = 1 << 20
    # Acks are coalesced: the first after a quiet spell goes at once, then at most one per
    # ack_delay (or sooner once a quarter of recv_window waits). They only return credit, so
    # holding them back costs no latency and saves a frame and a router turn per message.
    ack_delay: float = 0.002
    heartbeat: float = 1.0  # seconds of quiet before a Heartbeat; 3 of them lose the router
    resend_after: float = 2.0
    max_resend_after: float = 30.0
    max_attempts: int = 0  # 0: resend until receipted or the ttl runs out
    takeover: bool = False
    send_only: bool = False  # never receive: may share a name with a live receiving peer


class Accepted(msgspec.Struct, frozen=True):
    """The router has these seqs: they are in their recipients' mailboxes."""

    seqs: list[int]


class Notified(msgspec.Struct, frozen=True):
    """The router's final word on a ticket sent with ``notify``."""

    seq: int
    status: str
    code: int
    detail: str


class Progressed(msgspec.Struct, frozen=True):
    """The recipient holds ticket ``seq`` for ``reason`` (a ``notify`` ticket only)."""

    seq: int
    reason: str


class SessionUp(msgspec.Struct, frozen=True):
    router_epoch: int


class SessionDown(msgspec.Struct, frozen=True):
    reason: str


class Refused(msgspec.Struct, frozen=True):
    """The router refused the session for good (name taken, taken over, bad version)."""

    code: Code
    reason: str


Event = Accepted | Failed | Notified | Progressed | SessionUp | SessionDown | Refused


class ClientCore:
    def __init__(
        self, name: str, *, epoch: int, options: ClientOptions | None = None, seed: int = 0
    ) -> None:
        if not valid_name(name):
            raise LocalProtocolError(f"invalid peer name {name!r}")
        self.name = name
        self.epoch = epoch
        self.options = opts = options or ClientOptions()
        self.window = SendWindow(
            window=opts.window,
            resend_after=opts.resend_after,
            max_resend_after=opts.max_resend_after,
            max_attempts=opts.max_attempts,
            rng=random.Random(seed or epoch),
        )
        self.inbox = Inbox()
        self.state = "new"
        self.router_epoch = 0
        self.refusal: Refused | None = None
        self._out: list[list[bytes]] = []
        self._events: list[Event] = []
        self._received: list[Inbound] = []
        self._awaiting: set[int] = set()  # accepted tickets waiting for a Delivered notice
        self.peer_state = ""  # what set_state() last said
        self.redeliver_after = 5.0  # the router's patience with unacked mail (Welcome)
        self._last_rx = 0.0
        self._last_tx = 0.0
        self._last_ping = -INF  # last Heartbeat sent
        self._last_ack = -INF
        self._ack_batch = max(1, opts.recv_window // 4)
        self._hello_due = INF
        self.bad_frames = 0  # a router never sends garbage: counted, then ignored
        self.send_frames = 0  # Send frames emitted: messages sent / this = the batching
        self._hello_tries = 0
        self._hellos = 0  # every Hello sent: the Welcome must echo the latest

    # -- driver API -----------------------------------------------------------------------

    def connect(self, now: float) -> None:
        self._last_rx = now
        self._say_hello(now)

    def submit(
        self, to: str, payload: bytes, now: float, *, notify: bool = False, ttl_ms: int = 0
    ) -> int:
        """Queue a message; return its seq. Raises LocalProtocolError on a bad argument."""
        if not valid_name(to):
            raise LocalProtocolError(f"invalid recipient name {to!r}")
        if len(payload) > self.options.max_payload:
            raise LocalProtocolError(
                f"payload of {len(payload)} bytes > max_payload {self.options.max_payload}"
            )
        return self.window.submit(to, payload, now, notify, ttl_ms)

    def ack(self, key: MessageKey, note: str = "") -> None:
        self.inbox.ack(key, note)

    def set_state(self, state: str, now: float) -> None:
        """Tell the router what this peer is doing (shown by ``zs peers``); kept and said
        again after every reconnect."""
        self.peer_state = state[:MAX_NOTE]
        if self.state == "ready":
            self._emit([encode(PeerState(self.peer_state))], now)

    def hold(self, key: MessageKey, reason: str, now: float) -> None:
        """Tell the router the application holds message ``key`` for ``reason`` (not an ack)."""
        dseq = self.inbox.dseq_of(key)
        if dseq and self.state == "ready":
            self._emit([encode(Hold(self.inbox.session, dseq, reason[:MAX_NOTE]))], now)

    def receive(self, parts: list[bytes], now: float) -> None:
        """Feed one multipart message from the router."""
        self._last_rx = now
        try:
            frame: AnyFrame = decode(parts[0])
        except DecodeFailure:
            self.bad_frames += 1
            return
        match frame:
            case Receipt(upto=upto, seqs=seqs):
                self._accepted(*self.window.on_receipt(upto, seqs))
            case Deliver():
                if self.state != "ready":
                    return  # an old session's delivery: it comes again after Welcome
                if frame.session > self.inbox.session:
                    # The router opened a session whose Welcome we never saw: start again.
                    self._lost("missed a Welcome", now)
                    return
                if len(parts) != len(frame.items) + 1:
                    self.bad_frames += 1
                    return
                self._received.extend(self.inbox.on_deliver(frame, parts[1:], now))
            case Held(seq=seq, reason=reason):
                self._events.append(Progressed(seq, reason))
            case Delivered(seq=seq, status=status, code=code, detail=detail):
                self._awaiting.discard(seq)
                self._events.append(Notified(seq, status, code, detail))
            case Nack(seq=seq, code=code, reason=reason, retry_ms=retry_ms):
                self._on_nack(seq, code, reason, retry_ms, now)
            case Welcome():
                self._on_welcome(frame, now)
            case Heartbeat():
                pass
            case _:
                pass  # kinds a router never sends to a peer: ignore

    def tick(self, now: float) -> None:
        """Fire timers: resends, expiries, heartbeats, router liveness."""
        self._events.extend(self.window.tick(now))
        hb = self.options.heartbeat
        if self.state == "ready":
            if now - self._last_rx > 3 * hb:
                self._lost("no frame from the router for 3 heartbeats", now)
            elif now - self._last_tx >= hb or (
                now - self._last_rx >= hb and now - self._last_ping >= hb
            ):
                # Quiet, or talking (acks) but hearing nothing: the router answers each
                # Heartbeat, so a recipient that only acks does not lose its session.
                self._emit([encode(Heartbeat())], now)
                self._last_ping = now
        elif self.state == "hello" and now >= self._hello_due:
            self._say_hello(now)

    def next_deadline(self) -> float:
        hb = self.options.heartbeat
        if self.state == "ready":
            beat = min(
                self._last_tx + hb,
                max(self._last_rx, self._last_ping) + hb,
                self._last_rx + 3 * hb,
            )
            backlog = self.inbox.ack_backlog
            if backlog >= self._ack_batch:
                beat = 0.0  # credit to return: due now
            elif backlog > 0:
                beat = min(beat, self._last_ack + self.options.ack_delay)
        elif self.state == "hello":
            beat = self._hello_due
        else:
            beat = INF
        return min(beat, self.window.next_deadline())

    def ack_due(self) -> float:
        """When the Ack owed for what was acked so far must leave: the one deadline that
        ``ack()`` can bring forward (``next_deadline()`` for the price of a subtraction)."""
        backlog = self.inbox.ack_backlog
        if backlog >= self._ack_batch:
            return 0.0
        return self._last_ack + self.options.ack_delay if backlog else INF

    def outgoing(self, now: float) -> list[list[bytes]]:
        """Multipart messages to send now, in order."""
        if self.state == "ready":
            backlog = self.inbox.ack_backlog
            if backlog > 0 and (
                backlog >= self._ack_batch or now >= self._last_ack + self.options.ack_delay
            ):
                self._send_ack(now)
            while batch := self.window.take(now, MAX_BATCH):
                items = [SendItem(m.seq, m.to, m.prev, m.notify, m.ttl_ms) for m in batch]
                header = encode(Send(self.window.base, items))
                self._emit([header, *(m.payload for m in batch)], now)
                self.send_frames += 1
        out, self._out = self._out, []
        return out

    @property
    def received_waiting(self) -> int:
        """Messages received and not yet taken by ``take_received()``."""
        return len(self._received)

    def take_received(self) -> list[Inbound]:
        """New messages for the application, in order (kept apart from ``events()``: there
        are many of them, and they need no dispatch)."""
        out, self._received = self._received, []
        return out

    def events(self) -> list[Event]:
        out, self._events = self._events, []
        return out

    def reconnect(self, now: float, reason: str) -> None:
        """Start the session again (the driver replaced its socket, or knows the link broke):
        say Hello, and on Welcome resend everything unreceipted."""
        if self.state in ("ready", "hello"):
            self._lost(reason, now)

    def close(self, now: float) -> None:
        if self.state == "ready":
            self._send_ack(now)  # what was handed over must not come again
        if self.state in ("ready", "hello"):
            self._emit([encode(Bye())], now)
        self.state = "closed"

    # -- internals ------------------------------------------------------------------------

    def _emit(self, parts: list[bytes], now: float) -> None:
        self._out.append(parts)
        self._last_tx = now

    def _send_ack(self, now: float) -> None:
        upto = self.inbox.pending_ack()
        if upto is not None:
            notes = self.inbox.take_notes(upto)
            self._emit([encode(Ack(self.inbox.session, upto, notes))], now)
            self._last_ack = now

    def _say_hello(self, now: float) -> None:
        self.state = "hello"
        o = self.options
        self._hellos += 1
        hello = Hello(
            PROTOCOL_VERSION,
            self.name,
            self.epoch,
            o.recv_window,
            o.takeover,
            self._hellos,
            o.send_only,
        )
        self._emit([encode(hello)], now)
        self._hello_tries += 1
        self._hello_due = now + min(o.heartbeat * 2 ** min(self._hello_tries - 1, 3), 5.0)

    def _on_welcome(self, frame: Welcome, now: float) -> None:
        if self.state != "hello" or frame.attempt != self._hellos:
            return  # not the answer to our latest Hello
        if (frame.router_epoch, frame.session) <= (self.router_epoch, self.inbox.session):
            return  # a stale Welcome (an earlier router or session)
        restarted = self.router_epoch not in (0, frame.router_epoch)
        self.router_epoch = frame.router_epoch
        self.redeliver_after = frame.redeliver_ms / 1000 or 5.0
        self.state = "ready"
        self._hello_tries = 0
        self._hello_due = INF
        self._accepted(*self.window.on_receipt(frame.acked, ()))
        self.window.requeue_all()
        self.inbox.reset_session(frame.session)
        if restarted and self._awaiting:
            # The old router took these; whether they were delivered died with it.
            for seq in sorted(self._awaiting):
                detail = "router restarted before the delivery was confirmed"
                self._events.append(Notified(seq, "unknown", 0, detail))
            self._awaiting.clear()
        if self.peer_state:
            self._emit([encode(PeerState(self.peer_state))], now)  # a new session knows none
        self._events.append(SessionUp(frame.router_epoch))

    def _on_nack(self, seq: int, code_int: int, reason: str, retry_ms: int, now: float) -> None:
        try:
            code = Code(code_int)
        except ValueError:
            code = Code.BAD_FRAME
        if seq:
            self._events.extend(self.window.on_nack(seq, code, reason, retry_ms, now))
        elif code is Code.NOT_WELCOMED:
            if self.state == "ready":
                self._lost("router forgot the session (restarted?)", now)
        elif code in (Code.NAME_TAKEN, Code.TAKEN_OVER, Code.BAD_VERSION, Code.INVALID_NAME):
            self.state = "refused"
            self.refusal = Refused(code, reason)
            self._events.append(self.refusal)
        # Any other session-level Nack (BAD_FRAME...) reports a bug of ours; nothing to undo.

    def _lost(self, reason: str, now: float) -> None:
        self._events.append(SessionDown(reason))
        self._hello_tries = 0
        self._say_hello(now)

    def _accepted(self, seqs: list[int], notify: list[int]) -> None:
        if seqs:
            self._awaiting.update(notify)
            self._events.append(Accepted(seqs))
