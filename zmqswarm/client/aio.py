"""``AsyncClient``: the asyncio driver. The engine runs in the event loop itself, in
callbacks, not a task: a turn runs straight from ``loop.add_reader`` when input comes, from a
``call_later`` timer when the core's next deadline falls, or coalesced through ``call_soon``
when the application acts. No future or task is made per message.

``send()`` after a quiet spell sends from the caller at once, then corks until the loop's
next iteration: a lone message leaves without waiting for the loop to come round, and a burst
still goes out in one batch.

ZeroMQ's descriptors are edge-triggered and a send can consume the edge, so a turn that sent
asks the socket again before it trusts the descriptor to say more has come."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from math import inf
from types import TracebackType
from typing import TypeVar

import zmq

from zmqswarm.errors import RouterUnavailableError, ZsTimeoutError
from zmqswarm.transport import clock, readable

from .base import BaseClient
from .tickets import BaseTicket, Message, Outcome, TicketId, TicketState, WaitFor

__all__ = ["AsyncClient", "AsyncTicket"]

T = TypeVar("T")


class AsyncTicket(BaseTicket["AsyncClient"]):
    """A sent message's ticket; ``await ticket.wait()`` until the router reports a state."""

    __slots__ = ()

    @property
    def state(self) -> TicketState:
        """``pending``, ``accepted``, ``delivered`` or ``failed``, as of now (no waiting)."""
        return self._client._ticket_outcome(self.seq)[0]

    async def wait(self, state: WaitFor = "accepted", timeout: float | None = 10.0) -> AsyncTicket:
        """Until the ticket is ``state``; DeliveryError if it failed, ZsTimeoutError if time
        ran out. A ticket that is there already returns at once."""
        outcome = self._reached(state)
        if outcome is None:
            outcome = await self._client._wait_ticket(self.seq, state, timeout)
        self._settle(outcome)
        return self


class AsyncClient(BaseClient):
    """The asyncio twin of ``Client`` (same arguments, ``spool`` and ``state`` too), driving
    the same engine.

    ``async with AsyncClient("alice") as c: await (await c.send("bob", b"hi")).wait()``.
    ``send()`` is a coroutine only so that ``block=True`` can wait for room in a full
    outbox; with room, it completes without suspending.
    """

    _publish_delay = 0.01  # a timer on the loop sends what waits

    def _attach(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._turn_due = False  # a turn is scheduled
        self._corked = False  # send() flushed eagerly in this loop iteration
        self._timer: asyncio.TimerHandle | None = None  # the next turn a timer brings
        self._timer_due = 0.0  # when it fires, on the core's clock
        self._readers: list[asyncio.Future[None]] = []  # recv() calls waiting for mail
        self._readers_due = inf  # the earliest of their timeouts (core clock)
        self._progress = asyncio.Event()  # a turn ran: tickets, room, the session may move
        self._fds: list[int] = []  # the socket's and its monitor's, watched by the loop

    async def __aenter__(self) -> AsyncClient:
        self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._report_unsent(await self.close())

    @property
    def resumed(self) -> list[AsyncTicket]:
        """The tickets of messages an earlier process sent through this client's spool and
        the router had not receipted: this client sends them again (see ``Client``)."""
        return [AsyncTicket(self, seq) for seq in self._resumed]

    def start(self) -> None:
        """Connect, on the running loop (``async with`` does this)."""
        self._loop = loop = asyncio.get_running_loop()
        self._open()
        assert self._sock is not None and self._monitor is not None
        self._fds = [int(self._sock.getsockopt(zmq.FD)), int(self._monitor.getsockopt(zmq.FD))]
        loop.add_reader(self._fds[0], self._on_readable)
        loop.add_reader(self._fds[1], self._on_monitor)
        self._kick()

    # -- the loop -------------------------------------------------------------------------

    def _on_readable(self) -> None:
        """Input (or a state change) on a socket: run the turn here and now, not one loop
        iteration later."""
        if not self._turn_due:
            self._run()

    def _on_monitor(self) -> None:
        """The connection dropped or came back: look at once."""
        self._next_look = 0.0
        self._on_readable()

    def _kick(self) -> None:
        """Something may have changed (a send, an ack, a timer): run one turn soon."""
        if not self._turn_due and self._loop is not None:
            self._turn_due = True
            self._loop.call_soon(self._run)

    def _run(self) -> None:
        self._turn_due = False
        sock = self._sock
        if sock is None:
            return
        for _ in range(64):  # a bounded burst, then let the loop breathe
            now = clock()
            wait = self._turn(now)
            self._progress.set()
            if self._readers and (self._core.deliverable(now) or now >= self._readers_due):
                self._wake_readers()  # mail, or a wait ran out: each looks at its own case
            if self._core.received_waiting >= self._turn_limit:
                self._kick()  # readers take these (and ack them) before the next feed
                break
            if not readable(sock):  # asked after the turn's sends: re-arms the edge
                break
        else:
            self._kick()  # still busy: come back after other callbacks
        self._arm(min(now + min(wait, 0.5), self._readers_due))

    def _arm(self, due: float) -> None:
        """Make sure a turn runs by ``due`` (core clock). A timer already set to fire sooner
        is kept: the turn it brings re-arms for the real deadline."""
        timer = self._timer
        if timer is not None:
            if self._timer_due <= due:
                return
            timer.cancel()
        now = clock()
        due = max(due, now)
        assert self._loop is not None
        self._timer = self._loop.call_later(due - now, self._on_timer)
        self._timer_due = due

    def _on_timer(self) -> None:
        self._timer = None
        self._kick()

    def _push(self, now: float) -> None:
        """After a send, a publish or a batch's end: send at once, from the caller, then cork
        until the loop's next iteration, so that a burst of sends after this one is batched
        by a single turn. Only the send: a new message's resend deadline falls after the one
        the armed timer waits for. Corked, or a turn coming anyway (or not started yet): that
        turn sends it, with the others."""
        if self._turn_due or self._corked or self._sock is None:
            self._kick()
            return
        assert self._loop is not None
        self._flush(now)
        self._corked = True
        self._loop.call_soon(self._uncork)
        if self._timer is None:
            self._arm(self._core.next_deadline())

    def _flush(self, now: float) -> None:
        super()._flush(now)
        assert self._sock is not None
        if readable(self._sock):
            self._kick()  # the send may have eaten the descriptor's edge: read in a turn

    def _poke(self, due: float) -> None:
        if due > clock():
            self._arm(due)  # no turn per ack: the core holds Acks back up to ack_delay
        else:
            self._kick()

    def _acks_due(self, now: float) -> None:
        self._arm(self._core.ack_due())  # due later: a timer sends it

    def _uncork(self) -> None:
        self._corked = False

    def _session_changed(self) -> None:
        self._wake_readers()  # they raise a refusal, or wait again

    def _wake_readers(self) -> None:
        readers, self._readers = self._readers, []
        self._readers_due = inf
        for fut in readers:
            if not fut.done():  # a cancelled recv() leaves a done future behind
                fut.set_result(None)

    async def _until(
        self, done: Callable[[], T | None], timeout: float | None, what: str, check: bool = True
    ) -> T:
        """Wait through turns until ``done()`` returns something; ZsTimeoutError after
        ``timeout`` seconds. ``check``: raise if the client is closed or refused meanwhile."""
        deadline = inf if timeout is None else clock() + timeout
        while True:
            if check:
                self._check_usable()
            result = done()
            if result is not None:
                return result
            left = deadline - clock()
            if left <= 0:
                raise ZsTimeoutError(f"{what} within {timeout} s")
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), None if left == inf else left)
            except TimeoutError:
                pass

    # -- sending --------------------------------------------------------------------------

    async def send(
        self, to: str, payload: bytes, *, notify: bool = False, ttl: float | None = None
    ) -> AsyncTicket:
        """Send ``payload`` to ``to``; the ticket comes back at once (no round trip) unless
        the outbox is full and ``block`` is set, when it waits for room."""
        return (await self.send_many(to, [payload], notify=notify, ttl=ttl))[0]

    async def send_many(
        self, to: str, payloads: list[bytes], *, notify: bool = False, ttl: float | None = None
    ) -> list[AsyncTicket]:
        """``send()`` for a batch to one recipient."""
        self._check_send(payloads)
        if not self._has_room(count := len(payloads)):
            self._kick()  # a batch's gathered messages leave: receipts make the room
            await self._until(lambda: self._has_room(count) or None, None, "room in the outbox")
        return [AsyncTicket(self, seq) for seq in self._enqueue(to, payloads, notify, ttl)]

    def publish(self, topic: str, payload: bytes, *, ttl: float | None = None) -> None:
        """Publish the latest value of ``topic`` for observers (see ``Client.publish``). Not a
        coroutine: it never waits. A burst leaves as one frame every ``publish_delay`` at most."""
        now = clock()
        self._publish(topic, payload, ttl, now)
        self._push(now)
        if self._sock is not None:
            self._arm(self._core.next_deadline())  # a value held back leaves on time

    async def _wait_ticket(self, seq: int, state: WaitFor, timeout: float | None) -> Outcome:
        assert self._loop is not None
        future: asyncio.Future[Outcome] = self._loop.create_future()

        def done(outcome: Outcome) -> None:
            if not future.done():
                future.set_result(outcome)

        book = self._book
        book.wait(seq, state, self._unsettled, done)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            book.cancel(seq, done)
            raise ZsTimeoutError(f"ticket {seq} not {state} within {timeout} s") from None

    async def wait_ready(self, timeout: float = 5.0) -> None:
        """Until the router has welcomed this client; RouterUnavailableError if it has not
        within ``timeout`` seconds."""
        try:
            await self._until(lambda: self.connected or None, timeout, "no answer")
        except ZsTimeoutError:
            raise RouterUnavailableError(
                f"router at {self.url} did not answer within {timeout} s", url=self.url
            ) from None

    # -- receiving ------------------------------------------------------------------------

    async def recv(self, timeout: float | None = None) -> Message:
        """The next message; ZsTimeoutError if none arrives within ``timeout`` seconds."""
        deadline = inf if timeout is None else clock() + timeout
        while True:
            self._check_usable()
            now = clock()
            msg = self._next_message(now)
            if msg is not None:
                if self.auto_ack:
                    self._acks_due(now)
                return msg
            if now >= deadline:
                raise ZsTimeoutError(f"no message within {timeout} s")
            assert self._loop is not None
            fut: asyncio.Future[None] = self._loop.create_future()
            self._readers.append(fut)
            if deadline < self._readers_due:
                self._readers_due = deadline
            self._arm(deadline)
            try:
                await fut
            finally:
                if fut in self._readers:  # cancelled: not woken, not kept
                    self._readers.remove(fut)

    async def recv_many(self, limit: int = 1024, timeout: float | None = None) -> list[Message]:
        """The messages waiting, ``limit`` at most (see ``Client.recv_many``)."""
        self._check_limit(limit)
        return self._more_messages(await self.recv(timeout), limit)

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while not self._closed:
            yield await self.recv()

    # -- closing --------------------------------------------------------------------------

    async def close(self, timeout: float = 5.0) -> list[TicketId]:
        """Wait up to ``timeout`` s for receipts, leave; return the unreceipted tickets."""
        if self._closed:
            return []
        if self._sock is None:  # never started
            self._closed = True
            self._files.close()
            return self._unsent()
        self._kick()  # what a batch gathered leaves first
        try:
            await self._until(lambda: self._close_done() or None, timeout, "receipts", False)
        except ZsTimeoutError:
            pass
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        for fd in self._fds:
            self._loop.remove_reader(fd)
        unsent = self._finish_close(clock())
        self._wake_readers()  # a recv() waiting now raises ClientClosedError
        return unsent
