"""ClientSession: a client's session with its router, from its Hello until it is closed
(``ClientCore.close`` says Bye). ClientCore (client_core.py) carries messages over it.

The state changes only through ``TRANSITIONS``; a call the current state does not allow
raises ``LocalProtocolError``::

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

from zmqswarm.errors import LocalProtocolError

from .client_events import Event, Refused, SessionDown, SessionUp
from .codec import NAME_RULE, encode, valid_name
from .frames import PROTOCOL_VERSION, Code, Hello, PeerState, Welcome
from .handshakes import DOWN, UP, Handshakes
from .inbox import MAX_NOTE, Inbox
from .lease import Lease
from .options import ClientOptions
from .packing import pack_limit
from .send_window import INF

__all__ = ["TRANSITIONS", "ClientSession"]

NEW, HELLO, READY, CLOSED, REFUSED = "new", "hello", "ready", "closed", "refused"

TRANSITIONS: dict[str, dict[str, str]] = {
    "connect": {NEW: HELLO},
    "welcome": {HELLO: READY},
    "lost": {HELLO: HELLO, READY: HELLO},
    "refused": {HELLO: REFUSED, READY: REFUSED},
    "close": {NEW: CLOSED, HELLO: CLOSED, READY: CLOSED, REFUSED: CLOSED},
}
"""event -> {state it may happen in: the state it leads to}."""

REFUSALS = frozenset(
    {Code.NAME_TAKEN, Code.TAKEN_OVER, Code.BAD_VERSION, Code.INVALID_NAME}
    | {Code.NOT_ALLOWED, Code.REVOKED}
)
"""Session-level Nacks that end a client for good: retrying cannot change the answer."""


class ClientSession:
    def __init__(self, name: str, epoch: int, options: ClientOptions, hellos: int) -> None:
        """``hellos``: Hello attempts the stream (name, epoch) used before this process (a
        spool's): the router ignores a Hello whose attempt is not above its session's."""
        if not valid_name(name):
            raise ValueError(f"invalid peer name {name!r}: {NAME_RULE}")
        self.name = name
        self.epoch = epoch
        self.options = options
        self.state = NEW
        self.router_epoch = 0
        self.refusal: Refused | None = None
        self.peer_state = ""  # what set_state() last said
        self.inbox = Inbox()  # its ``session`` is the session deliveries are taken under
        self.lease = Lease(options.heartbeat_timeout / 2, options.heartbeat_timeout)
        self.handshakes = Handshakes()
        self._out: list[list[bytes]] = []
        self._events: list[Event] = []
        self._hello_due = INF
        self._hello_tries = 0
        self._hellos = hellos  # every Hello sent: the Welcome must echo the latest
        self._hello_at = 0.0  # when the latest Hello left
        self._link_down = False  # the connection dropped; Hello again once it is back
        self._resume = 0  # the session a Hello on a new connection asks to resume
        self._dropped: set[int] = set()  # sessions whose Deliver came while we said Hello
        self._pack_limit = 0  # bytes a packed Send part may hold (0: the router takes none)

    def _transition(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[event][self.state]
        except KeyError:
            raise LocalProtocolError(f"{event!r} is not allowed in state {self.state!r}") from None

    @property
    def ready(self) -> bool:
        return self.state == READY

    @property
    def hellos(self) -> int:
        """Hello attempts used so far (this process's and, resumed, its stream's before)."""
        return self._hellos

    @property
    def has_events(self) -> bool:
        """Events wait to be taken (``events``)."""
        return bool(self._events)

    @property
    def sending(self) -> bool:
        """Messages may leave now: the session is up, or a Hello on a live link went ahead
        of them (the router takes a connection's frames in order)."""
        return self.state == READY or (self.state == HELLO and not self._link_down)

    # -- what the driver reports ----------------------------------------------------------

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

    def auth_refused(self, reason: str) -> None:
        """The connection's handshake failed for good (the router refused our CURVE key, or
        one side uses CURVE and the other not): no session can open, ever, as we are."""
        self._refused(Code.NOT_ALLOWED, reason)

    def set_state(self, state: str, now: float) -> None:
        """Tell the router what this peer is doing (shown by ``zs peers``); kept and said
        again after every reconnect."""
        self.peer_state = state[:MAX_NOTE]
        if self.sending:
            self._emit([encode(PeerState(self.peer_state))])  # after a Hello: its session's

    def _hello_deadline(self) -> float:
        """When a Hello is said again, unanswered (INF: not now; link_up will say one)."""
        return self._hello_due if self.state == HELLO and not self._link_down else INF

    # -- the Hello and its Welcome --------------------------------------------------------

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
        if self.router_epoch == frame.router_epoch and not frame.resumed:
            # The router ended our session before this Hello: another peer may have taken
            # the name and the mail meanwhile.
            self._fence()
        self._transition("welcome")
        self._pack_limit = pack_limit(frame.max_payload) if frame.packed else 0
        self.router_epoch = frame.router_epoch
        span = None
        if frame.liveness_ms:
            span = min(frame.liveness_ms / 1000, self.options.heartbeat_timeout) / 2
        self.lease.confirmed(self._hello_at, span)
        self._hello_tries = 0
        self._hello_due = INF
        self._welcomed(frame, restarted)
        self.inbox.reset_session(frame.session)
        self._resume = 0
        if self.peer_state:
            self._emit([encode(PeerState(self.peer_state))])  # a new session knows none
        self._events.append(SessionUp(frame.router_epoch))
        overtaken, self._dropped = frame.session in self._dropped, set()
        if overtaken:  # what that Deliver carried is out to us: have the router resend it
            self._lost("a Deliver came before its Welcome", now)

    def _on_session_nack(self, code: Code, reason: str, now: float) -> None:
        if code is Code.NOT_WELCOMED:
            if self.state == READY:
                self._lost("the router ended the session (restarted, or we went silent)", now)
        elif code in REFUSALS:
            self._refused(code, reason)
        # Any other session-level Nack (BAD_FRAME...) reports a bug of ours; nothing to undo.

    def _refused(self, code: Code, reason: str) -> None:
        if self.state in (HELLO, READY):
            self._transition("refused")
            self.refusal = Refused(code, reason)
            self._events.append(self.refusal)

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

    # -- what the messages' side does at each turn of the session --------------------------

    def _fence(self) -> None:
        """Forget what was taken under a session the router ended, and never handed over."""

    def _welcomed(self, frame: Welcome, restarted: bool) -> None:
        """A Welcome opened a session (``restarted``: under a new router incarnation)."""

    def _emit(self, parts: list[bytes]) -> None:
        self._out.append(parts)
