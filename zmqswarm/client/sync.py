"""``Client``: the blocking driver. The engine runs on the caller's own thread, inside each
call (send, recv, ticket waits, poll, close): no I/O thread, no hand-off between threads.

``send()`` has put its frame on the socket when it returns; libzmq's own I/O thread carries
it from there, and keeps the connection alive with ZMTP heartbeats, so a caller that computes
between calls delays nothing it has sent and loses nothing. A blocking call waits with the
GIL released, for the socket, its connection monitor or the next timer: in zmq's poll over
the socket and the monitor, or, while a stream flows, in a blocking read of the socket that
looks at the monitor every 10 ms.

Between calls, libzmq carries what was sent and keeps the connection alive; everything
that takes a decision waits for the next call: receipts, retries of refused messages, a
reconnection's resends, acks due later. A caller that sends and then goes quiet ends with
``close()`` (or ``ticket.wait()``), or calls ``poll()`` now and then.

A ``Client`` belongs to the thread that made it, like a pyzmq socket or a sqlite3
connection: one per thread, or an ``AsyncClient``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

import zmq

from zmqswarm.errors import ClientClosedError, RouterUnavailableError, WrongThreadError
from zmqswarm.errors import ZsTimeoutError as _Timeout
from zmqswarm.transport import clock, recv_parts

from .base import BaseClient
from .tickets import BaseTicket, Message, TicketId, TicketState, WaitFor

__all__ = ["Client", "Ticket"]

T = TypeVar("T")
_STREAMING = 0.1  # seconds since the router last spoke during which a wait reads the socket
_NOBLOCK = int(zmq.NOBLOCK)


class Ticket(BaseTicket["Client"]):
    """A sent message's ticket. ``state`` says where it is now; ``wait()`` blocks until the
    router reports the state asked for."""

    __slots__ = ()

    @property
    def state(self) -> TicketState:
        """``pending``, ``accepted``, ``delivered`` or ``failed``, as of now (no waiting)."""
        self._client._run()
        return self._client._ticket_outcome(self.seq)[0]

    def wait(self, state: WaitFor = "accepted", timeout: float | None = 10.0) -> Ticket:
        """Block until the ticket is ``state`` (``"delivered"`` needs ``notify=True``).
        Raises DeliveryError if it failed, ZsTimeoutError if time ran out. A ticket that is
        there already returns at once, without a round trip."""
        outcome = self._client._run_until(
            lambda now: self._reached(state), timeout, f"ticket {self} not {state}"
        )
        self._settle(outcome)
        return self


class Client(BaseClient):
    """A named peer: ``send()`` returns a Ticket at once; ``recv()`` hands messages over.

    Args:
        name: this peer's name (unique among live peers of the router).
        router: endpoint URL; default ``$ZS_ROUTER``, then the built-in ipc endpoint.
        auto_ack: ack each message as ``recv()`` returns it; with False call ``msg.ack()``.
        block: when the outbox is full, ``send()`` waits (True) or raises BackpressureError.
        options: reliability tuning (windows, heartbeats, resend backoff, takeover).
        context: the zmq Context to make the socket in (default: the global instance).
        spool: a file that keeps this sender's stream and its unreceipted messages: a
            message is in it when ``send()`` returns, and a later Client with the same
            spool (after a crash, a kill -9, a reboot) sends again, under the same epoch,
            what the router never receipted: ``resumed`` lists their tickets. One process
            and one name per spool (StoreInUseError, StoreError).
        state: a file that keeps what this recipient has handed over and acked, so that a
            later Client with the same state is never handed those messages again, even
            when the router delivers them again. Written before ``recv()`` returns a
            message (auto_ack) or before ``msg.ack()`` returns.
        curve: CURVE keys (``zmqswarm.keys.client_keys``) for a router that requires them;
            default: the files ``$ZS_CURVE_SECRET`` and ``$ZS_ROUTER_KEY`` name, if set.
    """

    def _attach(self) -> None:
        self._owner = threading.get_ident()
        self._rcvtimeo = -1  # the socket's RCVTIMEO as last set (ms; -1: libzmq's default)
        self._open()
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        self._run()  # the Hello leaves now

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._report_unsent(self.close())

    @property
    def resumed(self) -> list[Ticket]:
        """The tickets of messages an earlier process sent through this client's spool and
        the router had not receipted: this client sends them again. Empty without a spool."""
        return [Ticket(self, seq) for seq in self._resumed]

    # -- sending --------------------------------------------------------------------------

    def send(
        self, to: str, payload: bytes, *, notify: bool = False, ttl: float | None = None
    ) -> Ticket:
        """Send ``payload`` to ``to``; return its Ticket at once (no round trip): the frame is
        on the socket. ``notify``: the router reports delivery (``wait("delivered")``);
        ``ttl``: seconds after which an undelivered message is dropped (and counted)."""
        return Ticket(self, self._send(to, [payload], notify, ttl)[0])

    def send_many(
        self, to: str, payloads: list[bytes], *, notify: bool = False, ttl: float | None = None
    ) -> list[Ticket]:
        """``send()`` for a batch to one recipient, in one frame where the window allows."""
        return [Ticket(self, seq) for seq in self._send(to, payloads, notify, ttl)]

    def _send(self, to: str, payloads: list[bytes], notify: bool, ttl: float | None) -> list[int]:
        self._own()
        self._check_send(payloads)
        if not self._has_room(count := len(payloads)):
            self._run_until(lambda now: self._has_room(count) or None, None, "room in the outbox")
        return self._enqueue(to, payloads, notify, ttl)

    def publish(self, topic: str, payload: bytes, *, ttl: float | None = None) -> None:
        """Publish the latest value of ``topic`` for observers (``zs sub``, ``zs monitor``):
        the frame is on the socket when this returns; no answer, no ticket. The router keeps
        the last value per topic and sends observers only what changed, coalesced, so calling
        this thousands of times a second is fine. ``ttl``: seconds after which the router
        forgets the value unless a newer one came. While the session is down only the
        latest value per topic waits, and leaves once it is up again.

        Each value leaves during this call, unless ``ClientOptions(publish_delay=S)`` asks
        for coalescing here too: then a burst leaves as one frame at most every S seconds,
        with the latest of each topic, at the next call into the client after that (any
        call; ``poll()`` if you have none to make) or at ``close()``."""
        self._own()
        now = clock()
        self._publish(topic, payload, ttl, now)
        self._push(now)

    def poll(self, timeout: float = 0.0) -> None:
        """Run the engine: take receipts and notices, resend what is due. With a ``timeout``,
        wait up to that long for the router to say something first. For callers that only
        send: ``send()`` and ticket waits already do this."""
        self._own()
        wait = self._turn(clock())
        if timeout > 0:
            self._wait(min(wait, timeout))
            self._turn(clock())

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Block until the router has welcomed this client; RouterUnavailableError if it has
        not within ``timeout`` seconds (is ``zs router`` running at ``self.url``?)."""
        try:
            self._run_until(lambda now: self.connected or None, timeout, "no answer")
        except _Timeout:
            raise RouterUnavailableError(
                f"router at {self.url} did not answer within {timeout} s", url=self.url
            ) from None

    # -- receiving ------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Message:
        """The next message; ZsTimeoutError if none arrives within ``timeout`` seconds."""
        self._own()
        self._check_usable()
        now = clock()
        core = self._core
        received = core.take_message(now)
        if received is not None:  # taken already: a light turn
            msg = self._message(received, now)
            self._recv_turn(now)
        else:
            msg = self._run_until(self._next_message, timeout, "no message")
            now = clock()  # after the wait: an ack due meanwhile leaves now
        if self.auto_ack:
            self._acks_due(now)
        return msg

    def recv_many(self, limit: int = 1024, timeout: float | None = None) -> list[Message]:
        """The messages waiting, ``limit`` at most: at least one (ZsTimeoutError if none
        arrives within ``timeout`` seconds), and no wait for more once there is one. Each is
        handed over as ``recv()`` hands it over. For consumers of a steady stream: a call a
        burst instead of a call a message (Kafka's ``consume()``, Redis's COUNT)."""
        self._check_limit(limit)
        return self._more_messages(self.recv(timeout), limit)

    def __iter__(self) -> Client:
        return self

    def __next__(self) -> Message:
        try:
            return self.recv()
        except ClientClosedError:
            raise StopIteration from None

    # -- closing --------------------------------------------------------------------------

    def close(self, timeout: float = 5.0) -> list[TicketId]:
        """Wait up to ``timeout`` s for receipts, leave, and return the tickets the router
        never receipted (they were not handed over; the caller decides what to do)."""
        if self._closed:
            return []
        self._own()
        deadline = clock() + timeout
        while True:
            now = clock()
            wait = self._turn(now)
            if self._close_done() or now >= deadline:
                return self._finish_close(now)
            self._wait(min(wait, deadline - now))

    # -- the driver -----------------------------------------------------------------------

    def _own(self) -> None:
        if threading.get_ident() != self._owner:
            raise WrongThreadError(
                f"Client {self.name!r} belongs to the thread that made it (id {self._owner});"
                f" this is thread {threading.get_ident()}: use one Client per thread,"
                " or an AsyncClient"
            )

    def _poke(self, due: float) -> None:
        self._turn(clock())  # a call into the client: the engine turns, due or not

    def _acks_due(self, now: float) -> None:
        """Due now (its sender waits on it, or the last went out a while ago): sent as the
        call returns. Else it goes within ack_delay while the caller keeps calling (a
        blocking wait wakes for it), or on its next call."""
        if now >= self._core.ack_due():
            self._flush(now)

    def _ticket_progress(self, seq: int) -> str:
        self._run()  # reading a ticket is a call into the client: the engine turns
        return super()._ticket_progress(seq)

    def _run(self) -> float:
        """One turn from a call that may come from anywhere: checks the thread first."""
        self._own()
        if self._closed:
            raise ClientClosedError(f"client {self.name!r} is closed")
        return self._turn(clock())

    def _run_until(self, done: Callable[[float], T | None], timeout: float | None, what: str) -> T:
        """Turn and wait until ``done(now)`` returns something; ZsTimeoutError after
        ``timeout`` seconds. Every blocking call of the client waits here."""
        self._own()
        now = clock()
        deadline = None if timeout is None else now + timeout
        self._check_usable()
        # Nothing due and nothing known to wait (recv after recv): no turn before the wait.
        wait = self._quiet_for(now) if timeout is None or timeout > 0 else None
        while True:
            if wait is None:
                wait = self._turn(now)
            result = done(now)
            if result is not None:
                return result
            self._check_usable()  # the turn may have brought a refusal
            if deadline is not None:
                if now >= deadline:
                    raise _Timeout(f"{what} within {timeout} s")
                wait = min(wait, deadline - now)
            self._wait(wait)
            now, wait = clock(), None
            if self._feed_taken(now) and (result := done(now)) is not None:
                return result  # what the wait read, handed over before the rest of a turn

    def _wait(self, seconds: float) -> None:
        """Sleep, GIL released, until the router says something or ``seconds`` pass; a frame
        that came is read here (``_feed_taken`` or the next turn feeds it). While a stream
        flows (the router spoke in the last ``_STREAMING`` s), in a blocking read of the
        socket, bounded by the next look at its monitor: libzmq waits on its own descriptor
        and hands the frame over in the same call, a wake-up about 7 us of CPU cheaper than a
        poll and its reads. Idle, in zmq's poll over the socket and its monitor, which sleeps
        until either has news (a monitor with news is looked at at once)."""
        sock = self._sock
        assert sock is not None
        now = clock()
        if now - self._last_frame < _STREAMING:
            limit = min(seconds, self._next_look - now)
            ms = int(limit * 1000) + 1 if limit > 0 else 0
            if ms != self._rcvtimeo:  # set only when it changes
                sock.setsockopt(zmq.RCVTIMEO, ms)
                self._rcvtimeo = ms
            try:
                self._taken = recv_parts(sock)
            except zmq.Again:
                pass
            return
        if seconds == float("inf"):
            ready = self._poller.poll()
        else:
            ready = self._poller.poll(max(0, int(seconds * 1000) + 1) if seconds > 0 else 0)
        for polled, _ in ready:
            if polled is self._monitor:
                self._next_look = 0.0
            else:
                try:
                    self._taken = recv_parts(sock, _NOBLOCK)
                except zmq.Again:
                    pass
