"""``AsyncClient``: the asyncio driver. The Engine runs in the event loop itself, driven by
callbacks, not a task. A ``_turn`` feeds what arrived, fires the timers and sends what is
due. It runs straight from the ``loop.add_reader`` callback when input comes, from a
``call_later`` timer, or coalesced through ``call_soon`` when the application acts. No future
or task is created per message (the earlier loop built two futures and an ``asyncio.wait``
per turn).

``send()`` after a quiet spell sends from the caller at once, then corks until the loop's
next iteration: a lone message leaves without waiting for the task to yield, and a burst
still goes out in one batch.

ZeroMQ's descriptor is edge-triggered and a send can consume its edge: so every turn reads
the socket until it is empty, after sending too, instead of trusting the descriptor alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from math import inf
from types import TracebackType
from typing import Any

import zmq

from zmqswarm.client.base import Engine, PeerBase, TicketBase
from zmqswarm.client.tickets import Message, TicketBook, TicketId, WaitFor
from zmqswarm.errors import BackpressureError, DeliveryError, ZsTimeoutError
from zmqswarm.protocol import ClientOptions
from zmqswarm.transport import drain, readable, routing_id, send_parts, tune

__all__ = ["AsyncClient", "AsyncTicket"]


class AsyncTicket(TicketBase["AsyncClient"]):
    """A sent message's ticket; ``await ticket.wait()`` until the router reports a state."""

    __slots__ = ()

    async def wait(self, state: WaitFor = "accepted", timeout: float | None = 10.0) -> AsyncTicket:
        self.note = await self._client._wait_ticket(self.seq, state, timeout)
        return self


class AsyncClient(PeerBase):
    """The asyncio twin of ``Client`` (same arguments), driving the same Engine.

    Use as ``async with AsyncClient("alice") as c: await (c.send("bob", b"hi")).wait()``.
    """

    def __init__(
        self,
        name: str,
        *,
        router: str | None = None,
        auto_ack: bool = True,
        block: bool = True,
        options: ClientOptions | None = None,
        context: zmq.Context[Any] | None = None,
    ) -> None:
        super().__init__(name, router, auto_ack, block, options)
        self._engine = Engine(name, self.epoch, self.options)
        self._ctx = context or zmq.Context.instance()
        self._raw: zmq.Socket[bytes] | None = None  # used from the loop only, non-blocking
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fd = -1
        self._turn_due = False  # a _turn is scheduled
        self._corked = False  # send() flushed eagerly in this loop iteration
        self._sends = 0  # multipart messages sent: a turn that sent must read again
        self._timer: asyncio.TimerHandle | None = None  # the next turn a timer brings
        self._timer_due = 0.0  # when it fires, in Engine.now() seconds
        self._readers: list[asyncio.Future[None]] = []  # recv() calls waiting for mail
        self._readers_due = inf  # the earliest of their timeouts (Engine.now() seconds)
        self._progress = asyncio.Event()  # the engine ran: receipts may have settled tickets
        self._closed = False

    async def __aenter__(self) -> AsyncClient:
        self.start()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._report_unsent(await self.close())

    def start(self) -> None:
        sock: zmq.Socket[bytes] = zmq.Socket(self._ctx, zmq.DEALER)
        tune(sock)
        sock.setsockopt(zmq.ROUTING_ID, routing_id(self.name, self.epoch))
        sock.connect(self.url)
        self._raw = sock
        self._loop = loop = asyncio.get_running_loop()
        self._fd = int(sock.getsockopt(zmq.FD))
        loop.add_reader(self._fd, self._on_readable)
        self._engine.on_state = self._wake_readers  # they raise a refusal, or wait again
        self._engine.core.connect(self._engine.now())
        self._kick()

    # -- the loop -------------------------------------------------------------------------

    def _on_readable(self) -> None:
        """Input (or a state change) on the socket: run the turn here and now, not one loop
        iteration later (an epoll_wait and a dispatch saved per message received)."""
        if not self._turn_due:
            self._turn()

    def _kick(self) -> None:
        """Something may have changed (input, a send, an ack, a timer): run one turn soon."""
        if not self._turn_due and self._loop is not None:
            self._turn_due = True
            self._loop.call_soon(self._turn)

    def _turn(self) -> None:
        self._turn_due = False
        raw = self._raw
        if raw is None or self._closed:
            return
        self._feed(raw)
        for _ in range(64):  # a bounded burst, then let the loop breathe
            sends, full = self._sends, self._engine.turn_full
            wait = self._step()
            if full:  # readers take this turn's messages (and ack them) before the next feed
                self._kick()
                break
            # Read again after a send, which can eat the descriptor's edge. A turn that sent
            # nothing leaves the edge armed: input that comes later wakes the loop itself.
            if self._sends == sends or not self._feed(raw):
                break
        else:
            self._kick()  # still busy: come back after other callbacks
        self._arm(min(self._engine.now() + min(wait, 0.5), self._readers_due))

    def _arm(self, due: float) -> None:
        """Make sure a turn runs by ``due`` (Engine.now() seconds). A timer already set to
        fire sooner is kept: the turn it brings re-arms for the real deadline, and one early
        turn costs less than a TimerHandle made and cancelled on every turn."""
        timer = self._timer
        if timer is not None:
            if self._timer_due <= due:
                return
            timer.cancel()
        now = self._engine.now()
        due = max(due, now)  # overdue: a timer set to fire now will do
        assert self._loop is not None
        self._timer = self._loop.call_later(due - now, self._on_timer)
        self._timer_due = due

    def _flush_now(self, now: float) -> None:
        """Send at once, from the caller: the first send after a quiet spell leaves without
        waiting for the task to yield and the loop to come round (measured 44 us at p50).
        Then cork until the loop's next iteration, so that a burst of send() calls after
        this one is batched by a single turn as before.

        Only the send: no timers fire here and none need arming, since a new message's
        resend deadline falls after the one the armed timer already waits for."""
        raw = self._raw
        if raw is None or self._closed:
            return
        self._engine.flush(now, self._send)
        self._corked = True
        assert self._loop is not None
        self._loop.call_soon(self._uncork)
        if readable(raw):
            self._kick()  # the send may have eaten the descriptor's edge: read in a turn
        if self._timer is None:
            self._arm(self._engine.core.next_deadline())

    def _uncork(self) -> None:
        self._corked = False

    def _on_timer(self) -> None:
        self._timer = None
        self._kick()

    def _feed(self, raw: zmq.Socket[bytes]) -> int:
        engine = self._engine
        return engine.feed_turn(drain(raw, 1024), engine.now())

    def _step(self) -> float:
        now = self._engine.now()
        wait = self._engine.step(now, self._send)
        self._progress.set()
        if self._readers and (self._engine.inbox or now >= self._readers_due):
            self._wake_readers()  # mail, or a wait ran out: each re-checks its own case
        return wait

    def _send(self, parts: list[bytes]) -> None:
        assert self._raw is not None
        send_parts(self._raw, parts)
        self._sends += 1

    def _wake_readers(self) -> None:
        readers, self._readers = self._readers, []
        self._readers_due = inf
        for fut in readers:
            if not fut.done():  # a cancelled recv() leaves a done future behind
                fut.set_result(None)

    # -- API ------------------------------------------------------------------------------

    def send(
        self, to: str, payload: bytes, *, notify: bool = False, ttl: float | None = None
    ) -> AsyncTicket:
        """Queue ``payload`` for ``to``; return its ticket at once."""
        return self.send_many(to, [payload], notify=notify, ttl=ttl)[0]

    def send_many(
        self, to: str, payloads: list[bytes], *, notify: bool = False, ttl: float | None = None
    ) -> list[AsyncTicket]:
        """``send()`` for a batch to one recipient."""
        self._check_open()
        for payload in payloads:
            self._validate_send(to, payload)
        core = self._engine.core
        if len(core.window) + len(payloads) > self.options.max_outbox:
            raise BackpressureError(self.options.max_outbox)
        ttl_ms = int(ttl * 1000) if ttl else 0
        now = self._engine.now()
        seqs = [core.submit(to, p, now, notify=notify, ttl_ms=ttl_ms) for p in payloads]
        if self._turn_due or self._corked:
            self._kick()  # a turn is coming, or one just flushed: batch with the others
        else:
            self._flush_now(now)
        return [AsyncTicket(self, seq) for seq in seqs]

    async def send_wait(self, to: str, payload: bytes, **kw: Any) -> AsyncTicket:
        """``send()`` that waits for room in the outbox instead of raising."""
        while len(self._engine.core.window) >= self.options.max_outbox:
            self._check_open()
            self._progress.clear()
            await self._progress.wait()
        return self.send(to, payload, **kw)

    async def _wait_ticket(self, seq: int, state: WaitFor, timeout: float | None) -> str:
        future: asyncio.Future[tuple[str, DeliveryError | None]] = (
            asyncio.get_running_loop().create_future()
        )

        def done(outcome: tuple[str, DeliveryError | None]) -> None:
            if not future.done():
                future.set_result(outcome)

        book = self._engine.book
        book.wait(seq, state, self._engine.unsettled, done)
        try:
            _, error = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            book.cancel(seq, done)
            raise ZsTimeoutError(f"ticket {seq} not {state} within {timeout} s") from None
        if error is not None:
            raise error
        return book.notes.get(seq, "")

    async def recv(self, timeout: float | None = None) -> Message:
        """The next message; ZsTimeoutError if none arrives within ``timeout`` seconds."""
        inbox = self._engine.inbox
        if not inbox:
            await self._await_mail(timeout)
        received = inbox.popleft()
        key = received.key
        msg = Message(key[0], received.payload, key, received.attempt, self, received.expires)
        if self.auto_ack:
            msg.ack()
        return msg

    @property
    def redeliver_after(self) -> float:
        """Seconds the router waits for an ack (or a ``msg.hold()``) before it delivers a
        message again: hold mail you keep well within it."""
        return self._engine.core.redeliver_after

    def set_state(self, state: str) -> None:
        """Tell the router what this peer is doing: ``zs peers`` shows it. Said again after
        every reconnect, forgotten when the session ends."""
        self._check_open()
        self._engine.core.set_state(state, self._engine.now())
        self._kick()

    def _book(self) -> TicketBook:
        return self._engine.book

    def _hold_key(self, key: tuple[str, int, int], reason: str) -> None:
        self._engine.core.hold(key, reason, self._engine.now())
        self._kick()

    def _ack_key(self, key: tuple[str, int, int], note: str = "") -> None:
        core = self._engine.core
        core.ack(key, note)
        # No turn per ack: the core holds Acks back up to ack_delay anyway, so a timer for
        # when the next one is due will do (measured: one turn fewer per message received).
        self._arm(core.ack_due())

    async def _await_mail(self, timeout: float | None) -> None:
        """Until the inbox has mail. A plain future per wait, resolved by the turn that
        filled the inbox: ``asyncio.wait_for(event.wait())`` made a task per call and took
        two more loop iterations to wake (Python 3.11). The timeout rides on the client's
        own timer (``_arm``), not on a TimerHandle made and cancelled for every wait."""
        engine = self._engine
        inbox = engine.inbox
        deadline = inf if timeout is None else engine.now() + timeout
        while not inbox:
            self._check_open()
            if engine.now() >= deadline:
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

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while not self._closed:
            yield await self.recv()

    async def close(self, timeout: float = 5.0) -> list[TicketId]:
        """Wait up to ``timeout`` s for receipts, leave; return the unreceipted tickets."""
        if self._closed or self._raw is None:
            self._closed = True
            return []
        engine = self._engine
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(engine.core.window) and engine.core.refusal is None:
            left = deadline - loop.time()
            if left <= 0:
                break
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), left)
            except TimeoutError:
                break
        unsent = [TicketId(self.name, self.epoch, s) for s in engine.core.window.pending]
        engine.core.close(engine.now())
        self._step()  # the last Ack and the Bye
        self._closed = True
        self._wake_readers()  # a recv() waiting now raises ClientClosedError
        if self._timer is not None:
            self._timer.cancel()
        assert self._loop is not None and self._raw is not None
        self._loop.remove_reader(self._fd)
        self._raw.close(linger=200)
        self._raw = None
        return unsent

    def _check_open(self) -> None:
        self._raise_if_unusable(self._closed, self._engine.core.refusal)
