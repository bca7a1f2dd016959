"""ClientCore: everything a peer does, minus the I/O. Both clients drive it.

Feed it frames (``receive``) and what the connection did (``link_down``, ``link_up``), tell it
the time (``tick``), ask it what to send (``outgoing``), which message the application may
have now (``take_message``) and what else happened (``events``). It never blocks, never
sleeps and never touches a socket: time is always passed in.

Every decision about the session lives in the sans-IO layer; the drivers only move bytes and
wait. The session itself (Hello, Welcome, the lease, refusals: its states and transitions) is
ClientSession's (client_session.py); this module carries messages over it: what is sent and
resent (send_window.py), what came in and is acked (inbox.py), topic values (publishing.py).
"""

from __future__ import annotations

import random
from collections import deque

from zmqswarm.errors import LocalProtocolError

from .client_events import Accepted, Event, Notified, Progressed
from .client_session import CLOSED, HELLO, READY, TRANSITIONS, ClientSession
from .codec import MAX_BATCH, NAME_RULE, AnyFrame, DecodeFailure, decode, encode, valid_name
from .frames import (
    Ack,
    Bye,
    Code,
    Deliver,
    Delivered,
    Heartbeat,
    Held,
    Hold,
    Nack,
    Receipt,
    Welcome,
)
from .inbox import MAX_NOTE, Inbound, MessageKey
from .options import ClientOptions
from .packing import payloads_of, send_frames
from .publishing import Publishing
from .send_window import INF, SendWindow

__all__ = ["TRANSITIONS", "ClientCore"]


class ClientCore(ClientSession):
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
        opts = options or ClientOptions()
        super().__init__(name, epoch, opts, hellos)
        self.window = SendWindow(
            window=opts.max_outbox,
            resend_after=opts.resend_after,
            max_resend_after=opts.max_resend_after,
            max_attempts=opts.max_attempts,
            rng=random.Random(seed or epoch),
        )
        self.publishing = Publishing(opts.max_topic_value, opts.publish_delay or 0.0)
        self.bad_frames = 0  # a router never sends garbage: counted, then ignored
        self.fenced = 0  # messages taken under a session the router had ended: never handed
        self._received: deque[Inbound] = deque()  # taken, not yet handed to the application
        self._awaiting: set[int] = set()  # accepted tickets waiting for a Delivered notice
        self._last_ack = -INF
        self._ack_batch = max(1, opts.recv_window // 4)

    # -- sending --------------------------------------------------------------------------

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

    # -- receiving ------------------------------------------------------------------------

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
        """Frames wait to be sent (``outgoing``): a ping that renews the lease, asked for by a
        delivery or by the hand-over gate."""
        return bool(self._out)

    @property
    def received_waiting(self) -> int:
        """Messages taken from the router and not yet handed to the application."""
        return len(self._received)

    def ack(self, key: MessageKey, note: str = "") -> None:
        self.inbox.ack(key, note)

    def hold(self, key: MessageKey, reason: str, now: float) -> None:
        """Tell the router the application holds message ``key`` for ``reason`` (not an ack)."""
        dseq = self.inbox.dseq_of(key)
        if dseq and self.state == READY:
            self._emit([encode(Hold(self.inbox.session, dseq, reason[:MAX_NOTE]))])

    # -- the driver's turn ----------------------------------------------------------------

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
        if now >= self._hello_deadline():
            self._say_hello(now)
        elif now >= self.lease.ping_due():
            self._send_ping(now)  # lost with a dropped connection: ask again

    def next_deadline(self) -> float:
        if self.state == READY:
            due = self.ack_due()
            due = min(due, self.lease.ping_due())
            if self.publishing.pending:
                due = min(due, self.publishing.due)
        else:
            due = self._hello_deadline()
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
        if self.sending:
            window = self.window
            while batch := window.take(now, MAX_BATCH):
                self._out.extend(send_frames(window.base, batch, self._pack_limit))
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
        elif self.state == READY and self._received and self.lease.wants_ping(now):
            # Renewed as the mail comes, not when the application next asks for it: after a
            # silence, a reader that waits for a message would otherwise wait for its own
            # timeout before anyone asked the router.
            self._send_ping(now)

    def _on_nack(self, seq: int, code_int: int, reason: str, retry_ms: int, now: float) -> None:
        try:
            code = Code(code_int)
        except ValueError:
            code = Code.BAD_FRAME
        if seq:
            self._events.extend(self.window.on_nack(seq, code, reason, retry_ms, now))
        else:
            self._on_session_nack(code, reason, now)

    def _fence(self) -> None:
        # What was taken and never handed over comes again, to whoever holds the name now.
        if self._received:
            self.fenced += len(self._received)
            self.inbox.forget(list(self._received))
            self._received.clear()

    def _welcomed(self, frame: Welcome, restarted: bool) -> None:
        self._accepted(*self.window.on_receipt(frame.acked, ()))
        self.window.requeue_sent_before(self._hello_at)
        if restarted:
            # The old router took these; whether they were delivered died with it.
            for seq in sorted(self._awaiting):
                detail = "router restarted before the delivery was confirmed"
                self._events.append(Notified(seq, "unknown", 0, detail))
            self._awaiting.clear()
            self.publishing.router_restarted()

    def _accepted(self, seqs: list[int], notify: list[int]) -> None:
        if seqs:
            self._awaiting.update(notify)
            self._events.append(Accepted(seqs))
