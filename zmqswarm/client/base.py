"""What both clients are, minus how they wait: argument checks, tickets, messages, acks,
holds, state, the backpressure policy and closing, over the turns of turns.py (the socket,
its monitor, the turn that drives the core). ``Client`` (sync.py) and ``AsyncClient``
(aio.py) add only how they wait for the socket and how they are woken; each call into them
runs a turn on the caller's own thread (or loop), so there is no Python I/O thread and
nothing to hand over between threads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec
import zmq

from zmqswarm.errors import (
    AccessDeniedError,
    BackpressureError,
    ClientClosedError,
    NameTakenError,
    RouterUnavailableError,
)
from zmqswarm.protocol import ClientCore, ClientOptions, Code
from zmqswarm.protocol.codec import NAME_RULE, valid_name
from zmqswarm.transport import (
    clock,
    id_secret,
    new_epoch,
    peer_keys,
    resolve_router_url,
    routing_id,
)

from .files import ClientFiles, Path
from .tickets import Message, MessageKey, Outcome, TicketBook, TicketId
from .turns import Turns

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys
    from zmqswarm.protocol.inbox import Inbound

__all__ = ["BaseClient", "Path"]

log = logging.getLogger("zmqswarm.client")
INF = float("inf")


def refusal_error(code: Code, reason: str, url: str) -> RouterUnavailableError:
    """The error a refused session raises: retrying cannot change these answers."""
    if code is Code.NAME_TAKEN:
        return NameTakenError(reason, url=url)
    if code in (Code.NOT_ALLOWED, Code.REVOKED):
        return AccessDeniedError(reason, url=url)
    return RouterUnavailableError(reason, url=url)


class BaseClient(Turns):
    """The shared layer. Drivers call ``_open`` once, ``_turn`` whenever they run, and wait
    for the socket (``_sock``, ``_monitor``) and for ``_core.next_deadline()`` between turns.
    What they add is in the hooks: ``_attach``, ``_own``, ``_poke``, ``_acks_due`` and
    ``_session_changed``; ``AsyncClient`` also sends in its own way (``_push``, ``_flush``).
    The arguments are the same for both (see ``Client``).
    """

    _publish_delay = 0.0  # ClientOptions.publish_delay when it is None: see there

    def __init__(
        self,
        name: str,
        *,
        router: str | None = None,
        auto_ack: bool = True,
        block: bool = True,
        options: ClientOptions | None = None,
        context: zmq.Context[Any] | None = None,
        spool: Path | None = None,
        state: Path | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        if not valid_name(name):
            raise ValueError(f"invalid peer name {name!r}: {NAME_RULE}")
        self.name = name
        self.options = options or ClientOptions()
        if self.options.publish_delay is None:
            delay = self._publish_delay
            self.options = msgspec.structs.replace(self.options, publish_delay=delay)
        self.url = resolve_router_url(router)
        self._keys = peer_keys(curve)
        self._sock: zmq.Socket[bytes] | None = None
        self._monitor: zmq.Socket[bytes] | None = None
        self._files = files = ClientFiles(name, spool, state, self.options.fsync_every)
        try:
            self._setup(files, auto_ack, block, context)
            self._attach()
        except BaseException:
            self._abandon()
            raise

    def _setup(
        self, files: ClientFiles, auto_ack: bool, block: bool, context: zmq.Context[Any] | None
    ) -> None:
        name = self.name
        self.epoch = files.spool.log.epoch if files.spool else new_epoch()
        hellos = files.spool.log.hellos if files.spool else 0
        self._core = ClientCore(name, epoch=self.epoch, options=self.options, hellos=hellos)
        keys = self._keys
        secret = id_secret(keys.secret, name, self.epoch) if keys is not None else ""
        self._routing_id = routing_id(name, self.epoch, secret)
        self.auto_ack = auto_ack
        self.block = block
        self._book = TicketBook(name, self.epoch)
        self._ctx = context or zmq.Context.instance()
        self._closed = False
        # Take at most this many messages a turn before handing them over: a turn that took
        # a whole credit window first handed nothing over (and acked nothing) until its end.
        self._turn_limit = max(1, self.options.recv_window // 8)
        self._next_look = self._next_peek = 0.0
        self._taken = None
        self._last_frame = -INF
        self._batching = 0
        self._resumed: list[int] = []  # seqs an earlier process sent that go again
        if files.spool is not None:
            self._resumed, expired = files.resume(self._core)
            if expired:
                self._on_events(expired, clock())
        if files.state is not None:
            self._core.inbox.seed(files.state.log.high, files.state.log.above)

    def _attach(self) -> None:
        """The driver's own start, at the end of ``__init__``: ``Client`` connects now,
        ``AsyncClient`` once ``start()`` runs on its loop."""

    # -- batching ---------------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Gather the messages sent inside the block (``send``, ``send_many``, to any
        recipients) into as few frames as the window allows, up to 1,024 messages a frame:
        they leave together when the outermost block ends (``AsyncClient``: by the loop's next
        iteration), even if it ends with an exception. A Redis pipeline without replies to
        wait for: tickets still come back at once. Whatever runs a turn inside the block may
        send what was gathered so far: another call into the client (``recv``, a ticket's
        ``wait``, a ``publish``, a send that waits for room), or with ``AsyncClient`` any
        ``await`` that lets the loop run. Outside a block, ``Client`` puts each send on the
        socket as a frame of its own before the call returns; ``AsyncClient`` sends the
        first at once and coalesces the sends that follow it within one loop iteration."""
        self._own()
        self._batching += 1
        try:
            yield
        finally:
            self._batching -= 1
            if not self._batching and not self._closed:
                self._push(clock())

    def _own(self) -> None:
        """Raise if the calling thread may not use this client (``Client``: its owner's)."""

    def _poke(self, due: float) -> None:
        """The application acted (an ack, a hold, a state) and made output due at ``due``:
        the driver sees that it leaves by then (``Client`` turns at once: a call into it)."""
        raise NotImplementedError

    def _acks_due(self, now: float) -> None:
        """Messages were handed over with auto_ack: the driver sends their Ack when due."""
        raise NotImplementedError

    # -- checks every call makes ----------------------------------------------------------

    def _check_usable(self) -> None:
        if self._closed:
            raise ClientClosedError(f"client {self.name!r} is closed")
        refusal = self._core.refusal
        if refusal is not None:
            raise refusal_error(refusal.code, refusal.reason, self.url)

    def _check_send(self, payloads: list[bytes]) -> None:
        """What the core cannot know: the client is usable, and the batch can ever fit."""
        self._check_usable()
        if not payloads:
            raise ValueError("nothing to send")
        if len(payloads) > self.options.max_outbox:
            raise ValueError(f"{len(payloads)} messages > max_outbox {self.options.max_outbox}")

    def _has_room(self, count: int) -> bool:
        """Whether ``count`` more messages fit in the outbox. If not, ``block`` decides: the
        driver waits (turning) until they do, or this raises BackpressureError."""
        if len(self._core.window) + count <= self.options.max_outbox:
            return True
        if not self.block:
            raise BackpressureError(self.options.max_outbox)
        return False

    def _enqueue(
        self, to: str, payloads: list[bytes], notify: bool, ttl: float | None
    ) -> list[int]:
        """Queue them in the core, which checks every argument first (ValueError), and send
        them unless a batch gathers them. The room for them was made first."""
        now = clock()
        ttl_ms = int(ttl * 1000) if ttl else 0
        if self._files.spool is not None:
            self._files.sent(self._core, to, payloads, notify, ttl_ms, now)
        seqs = self._core.submit(to, payloads, now, notify=notify, ttl_ms=ttl_ms)
        if not self._batching:
            self._push(now)
        return seqs

    # -- receiving ------------------------------------------------------------------------

    def _next_message(self, now: float) -> Message | None:
        """The next message the application may have now (see ClientCore.take_message)."""
        core = self._core
        received = core.take_message(now)
        if core.has_output or core.ack_due() <= now:
            self._flush(now)  # a ping to renew the lease, or the ack of the one before
        if received is None:
            return None
        return self._message(received, now)

    def _more_messages(self, first: Message, limit: int) -> list[Message]:
        """``first``, then the messages already taken that may be handed over now: ``limit``
        in all at most; their Acks are the driver's to send when due. No wait for more, and
        no read of the socket: what a burst brought."""
        now = clock()
        out, core = [first], self._core
        # With a state and auto_ack: one write for the lot, before any is acked or returned.
        stated = self._files.state is not None and self.auto_ack
        later: list[MessageKey] | None = [] if stated else None
        while len(out) < limit:
            received = core.take_message(now)
            if received is None:
                break
            out.append(self._message(received, now, later))
        if later:
            self._files.acked(later, now)
            for key in later:
                core.ack(key)
        if core.has_output:
            self._flush(now)  # a ping the hand-over asked for
        if self.auto_ack:
            self._acks_due(now)
        return out

    @staticmethod
    def _check_limit(limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")

    def _message(
        self, received: Inbound, now: float, later: list[MessageKey] | None = None
    ) -> Message:
        """``received`` as the application gets it, acked with auto_ack (on the state first,
        if there is one), or its key added to ``later`` for the caller to do that for many."""
        key = received.key
        # The core runs on a clock that counts while the process is stopped; the application
        # compares expiry with time.monotonic().
        expires = time.monotonic() + (received.expires - now) if received.expires else 0.0
        msg = Message(key[0], received.payload, key, received.attempt, self, expires)
        files = self._files
        if self.auto_ack:
            if later is not None:
                later.append(key)
            else:
                if files.state is not None:  # on disk before recv() returns it
                    files.acked([key], now)
                self._core.ack(key)
            msg._client = None
        elif files.state is not None:
            files.handed(key)
        return msg

    def _ack_key(self, key: MessageKey, note: str) -> None:
        self._own()
        if self._files.state is not None:  # on disk before the Ack can leave
            self._files.acked([key], clock())
        self._core.ack(key, note)
        self._poke(self._core.ack_due())

    def _hold_key(self, key: MessageKey, reason: str) -> None:
        self._own()
        now = clock()
        self._core.hold(key, reason, now)
        self._poke(now)

    def _publish(self, topic: str, payload: bytes, ttl: float | None, now: float) -> None:
        self._check_usable()
        self._core.publish(topic, payload, now, ttl_ms=int(ttl * 1000) if ttl else 0)

    def set_state(self, state: str) -> None:
        """Tell the router what this peer is doing: ``zs peers`` shows it. Said again after
        every reconnect, forgotten when the session ends."""
        self._own()
        self._check_usable()
        now = clock()
        self._core.set_state(state, now)
        self._poke(now)

    # -- tickets --------------------------------------------------------------------------

    def _unsettled(self, seq: int) -> bool:
        window = self._core.window
        return seq in window.pending or seq >= window.next_seq

    def _ticket_outcome(self, seq: int) -> Outcome:
        return self._book.state(seq, self._unsettled)

    def _ticket_progress(self, seq: int) -> str:
        return self._book.progress.get(seq, "")

    def _ticket_note(self, seq: int) -> str:
        return self._book.notes.get(seq, "")

    # -- state ----------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the router has welcomed this client's current session."""
        return self._core.ready

    @property
    def redeliver_after(self) -> float:
        """Seconds the router waits for an ack before it delivers a message again to the
        same session: infinite, since it never does (a session that ends returns its unacked
        mail to the mailbox, for whoever next holds the name)."""
        return float("inf")

    def _unsent(self) -> list[TicketId]:
        return [TicketId(self.name, self.epoch, s) for s in self._core.window.pending]

    def _close_done(self) -> bool:
        """Nothing left to wait for before leaving: every message receipted, or no router
        that could receipt them."""
        return not len(self._core.window) or self._core.refusal is not None

    def _finish_close(self, now: float) -> list[TicketId]:
        """Leave: the last Ack and a Bye go out, the socket closes (lingering briefly so that
        they leave). Returns the tickets the router never receipted."""
        unsent = self._unsent()
        self._closed = True
        if self._core.state != "closed":
            self._core.close(now)
        self._close_socket(now)
        self._files.close()  # what was never receipted stays in the spool
        return unsent

    def _report_unsent(self, unsent: list[TicketId]) -> None:
        """Leaving a ``with`` block drops close()'s answer, so log it. An explicit close()
        only returns it: its caller says it in its own words (``zs send`` does, in one line)."""
        spool = self._files.spool
        if unsent and spool is not None:
            what = "%s closed with %d unreceipted messages, kept in %s for the next run"
            log.warning(what, self.name, len(unsent), spool.path)
        elif unsent:
            log.warning("%s closed with %d unreceipted messages", self.name, len(unsent))
