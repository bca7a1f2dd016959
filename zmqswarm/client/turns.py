"""The turn: how a client's core is driven over its socket, whichever client drives it.

A turn takes what the socket holds without blocking, fires the core's due timers and writes
what is ready. What it writes is libzmq's from then on: libzmq's own I/O thread (C, no GIL)
carries it, and answers ZMTP heartbeats, however long the caller then computes. ``Client``
and ``AsyncClient`` decide when to turn and how to wait between turns; ``BaseClient``
(base.py) is what the application calls.
"""

from __future__ import annotations

from itertools import chain
from typing import TYPE_CHECKING, Any

import zmq

from zmqswarm.protocol import ClientCore, ClientOptions
from zmqswarm.protocol.client_events import Event, Refused, SessionDown, SessionUp
from zmqswarm.transport import (
    clock,
    close_peer_socket,
    drain,
    link_events,
    open_peer_socket,
    readable,
    send_or_drop,
)

from .files import ClientFiles
from .tickets import TicketBook

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

__all__ = ["Turns"]

_PEEK = 0.0005  # seconds between looks at the socket from send()
_LOOK = 0.01  # seconds between looks at the connection monitor
INF = float("inf")


class Turns:
    """The socket, its connection monitor and the turns that drive the core over them."""

    url: str
    options: ClientOptions
    _core: ClientCore
    _files: ClientFiles
    _book: TicketBook
    _ctx: zmq.Context[Any]
    _keys: ClientKeys | None
    _routing_id: bytes
    _sock: zmq.Socket[bytes] | None
    _monitor: zmq.Socket[bytes] | None
    _closed: bool
    _turn_limit: int  # messages taken a turn at most: see BaseClient
    _next_look: float  # when to look at the connection monitor
    _next_peek: float  # when send() next looks at the socket
    _taken: list[bytes] | None  # a frame a wait read: fed first
    _last_frame: float  # when the router last said something (a stream flows)
    _batching: int  # open batch() blocks: sends made in them leave at the outermost end

    def _abandon(self) -> None:
        """A start that failed: let go of the socket, if it was made, and of the files."""
        sock, monitor = self._sock, self._monitor
        self._sock = self._monitor = None
        self._closed = True
        try:
            if sock is not None and monitor is not None:
                close_peer_socket(sock, monitor)
        finally:
            self._files.close()

    def _open(self) -> None:
        try:
            self._sock, self._monitor = open_peer_socket(
                self._ctx, self.url, self._routing_id, self.options, self._keys
            )
            self._core.connect(clock())
        except BaseException:
            self._abandon()
            raise

    def _turn(self, now: float, look: bool = False) -> float:
        """One step of the engine: take what arrived, fire timers, send what is ready.
        Returns the seconds until the core's next timer. ``look``: the monitor has news."""
        if look or now >= self._next_look:
            self._look(now)
        self._feed(now)
        self._step(now)
        if self._files:
            return min(self._core.next_deadline(), self._files.sync(now)) - now
        return self._core.next_deadline() - now

    def _quiet_for(self, now: float) -> float | None:
        """How long a wait may start without a turn first: nothing is due (no timer, no
        look at the monitor, nothing to send or gathered by ``batch()``, no store to sync)
        and no input is known to wait (a wait sees any at once). None: turn first."""
        core = self._core
        if self._taken or self._files or self._batching or now >= self._next_look:
            return None
        if core.has_output or core.window.has_ready():
            return None
        due = core.next_deadline()
        return due - now if now < due else None

    def _push(self, now: float) -> None:
        """The turn after a send (or a batch's end): the frame leaves first, then, at most
        every ``_PEEK``, what arrived is taken and timers fire (receipts come every few ms):
        a message waits for no bookkeeping, and a tight send loop does not ask the socket on
        every call. ``AsyncClient`` corks instead: see there."""
        self._flush(now)
        if now >= self._next_peek:
            self._peek(now)
            self._step(now)

    def _recv_turn(self, now: float) -> None:
        """The turn after a recv() that found its message waiting: the engine steps at most
        every ``_PEEK``, or when the hand-over asked for something (a ping for the lease)."""
        if now >= self._next_peek:
            self._peek(now)
            self._step(now)
        elif self._core.has_output:
            self._flush(now)

    def _peek(self, now: float) -> None:
        self._next_peek = now + _PEEK
        if now >= self._next_look:
            self._look(now)
        self._feed(now)

    def _look(self, now: float) -> None:
        """What the connection did (dropped, came back), from the socket's monitor. Asked
        every ``_LOOK`` at most, or when a wait says the monitor has news."""
        self._next_look = now + _LOOK
        monitor, core = self._monitor, self._core
        assert monitor is not None
        if readable(monitor):
            for event in link_events(monitor):
                core.link_event(event, now)

    def _feed(self, now: float) -> None:
        sock, core = self._sock, self._core
        assert sock is not None
        limit = self._turn_limit
        taken, self._taken = self._taken, None
        frames = drain(sock, 1024)
        for parts in frames if taken is None else chain((taken,), frames):
            core.receive(parts, now)
            self._last_frame = now
            if core.received_waiting >= limit:
                break  # hand these over (and ack them) before taking more

    def _feed_taken(self, now: float) -> bool:
        """Feed the frame a wait read, alone. True if it brought no events: what it
        delivered may then be handed over before the rest of a turn, whose timers and the
        socket's other frames wait for the next wait or turn, as they would have without
        this frame. False, and the frame left for the turn, if the monitor has news (a
        dropped connection ends the lease before anything is handed over). A frame that
        brought events (a receipt, a refusal, a notice) takes the whole turn first: tickets
        and the session learn of them there."""
        if self._taken is None or now >= self._next_look:
            return False
        taken, self._taken = self._taken, None
        core = self._core
        core.receive(taken, now)
        self._last_frame = now
        return not core.has_events

    def _step(self, now: float) -> None:
        core, sock = self._core, self._sock
        assert sock is not None
        core.tick(now)
        events = core.events()
        if events:
            self._on_events(events, now)
        for parts in core.outgoing(now):
            send_or_drop(sock, parts)

    def _flush(self, now: float) -> None:
        """Send what is ready, firing no timers: after a call that made output outside a
        turn (the hand-over gate's ping, a due ack)."""
        sock = self._sock
        assert sock is not None
        for parts in self._core.outgoing(now):
            send_or_drop(sock, parts)

    def _on_events(self, events: list[Event], now: float) -> None:
        self._book.on_events(events)
        session = any(isinstance(ev, SessionUp | SessionDown | Refused) for ev in events)
        self._files.settle(events, session, self._core.hellos, now)
        if session:
            self._session_changed()

    def _session_changed(self) -> None:
        """The session came up, went down or was refused: drivers wake who waits on it."""

    def _close_socket(self, now: float) -> None:
        """The last frames out (lingering briefly so that they leave), then the socket."""
        sock = self._sock
        if sock is not None:
            for parts in self._core.outgoing(now):
                send_or_drop(sock, parts)
            assert self._monitor is not None
            close_peer_socket(sock, self._monitor)
            self._sock = self._monitor = None
