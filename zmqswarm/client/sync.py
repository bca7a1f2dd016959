"""``Client``: the blocking driver. Its router socket lives in a background I/O thread; callers
reach that thread over an inproc pipe and doorbells, never through a lock.

Messages to send and acks travel on two deques (append/popleft are atomic: no lock), and a
caller rings the I/O thread's doorbell (an eventfd, see doorbell.py) only when the thread is
asleep in poll, and only once a sleep. Under load the thread never sleeps, so a send costs a
deque append, not a wake-up: measured 2-3x the throughput of one inproc message per send. A
caller more than ``_LEAD`` sends ahead of the awake thread yields the GIL to it.
Ordering with the ``sleeping`` flag: the thread sets it, then looks at the deques, then polls;
a caller appends, then reads it. Either the thread sees the item, or the caller sees the flag
and rings.

Caller → I/O thread, one multipart message per command on the pipe, then a ring::

    [b"W", req, seq, want]                                    wait for a ticket state
    [b"P", req, limit]                                        wait until the outbox is below limit
    [b"X", req, timeout]                                      close: flush, Bye, report

Replies come back on the pipe: ``[b"T", req, outcome]``. Received messages wait in the
engine's inbox deque; ``recv()`` pops them directly. When it is empty the caller puts its
thread's own doorbell in the ``waiting`` set, looks again, and sleeps on it; the I/O thread
appends to the inbox, then rings everyone in ``waiting`` (the same flag-then-look ordering as
``sleeping``).

Acks never wake the I/O thread: it polls the ``acks`` deque every turn, and while delivered
messages are still unacked it sleeps at most ``ack_delay`` (backing off to 64 ms when the
application holds them longer), since the core coalesces acks at that pace anyway.
"""

from __future__ import annotations

import itertools
import select
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any

import msgspec
import zmq

from zmqswarm.client.base import Engine, PeerBase, TicketBase
from zmqswarm.client.doorbell import Doorbell, ring_each
from zmqswarm.client.tickets import Message, TicketBook, TicketId, WaitFor
from zmqswarm.errors import BackpressureError, ClientClosedError, DeliveryError, ZsTimeoutError
from zmqswarm.protocol import ClientOptions
from zmqswarm.transport import drain, readable, routing_id, send_parts, tune

__all__ = ["Client", "Ticket"]


_OUTCOME = msgspec.msgpack.Encoder()
_LEAD = 1024  # sends a caller may queue ahead of an awake I/O thread before yielding to it


class Ticket(TicketBase["Client"]):
    """A sent message's ticket; ``wait()`` blocks until the router reports a state."""

    __slots__ = ()

    def wait(self, state: WaitFor = "accepted", timeout: float | None = 10.0) -> Ticket:
        """Block until the ticket is ``state`` (``"delivered"`` needs ``notify=True``).
        Raises DeliveryError if it failed, ZsTimeoutError if time ran out."""
        self.note = self._client._wait_ticket(self.seq, state, timeout)
        return self


class Client(PeerBase):
    """A named peer: ``send()`` returns a Ticket at once; ``recv()`` hands messages over.

    Args:
        name: this peer's name (unique among live peers of the router).
        router: endpoint URL; default ``$ZS_ROUTER``, then the built-in ipc endpoint.
        auto_ack: ack each message as ``recv()`` returns it; with False call ``msg.ack()``.
        block: when the outbox is full, ``send()`` waits (True) or raises BackpressureError.
        options: reliability tuning (windows, heartbeat, resend backoff, takeover).
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
        self._ctx = context or zmq.Context.instance()
        self._seq = itertools.count(1)
        self._req = itertools.count(1)
        self._idents = itertools.count(1)
        self._local = threading.local()
        self._callers: list[zmq.Socket[bytes]] = []
        self._bells: list[Doorbell] = []  # one per thread that waited in recv()
        self._closed = False
        self._io = _IOThread(self)
        self._io.start()

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._report_unsent(self.close())

    # -- sending --------------------------------------------------------------------------

    def send(
        self, to: str, payload: bytes, *, notify: bool = False, ttl: float | None = None
    ) -> Ticket:
        """Queue ``payload`` for ``to``; return its Ticket at once (no round trip)."""
        return Ticket(self, self._submit(to, [payload], notify, ttl)[0])

    def send_many(
        self, to: str, payloads: list[bytes], *, notify: bool = False, ttl: float | None = None
    ) -> list[Ticket]:
        """``send()`` for a batch to one recipient: one hop to the I/O thread for all of them."""
        return [Ticket(self, seq) for seq in self._submit(to, payloads, notify, ttl)]

    def _submit(self, to: str, payloads: list[bytes], notify: bool, ttl: float | None) -> list[int]:
        self._check_open()
        for payload in payloads:
            self._validate_send(to, payload)
        if not payloads:
            raise ValueError("send_many needs at least one payload")
        limit = self.options.max_outbox
        if self._io.issued - self._io.settled >= limit:
            if not self.block:
                raise BackpressureError(limit)
            self._request([b"P", b"", str(limit).encode()], None)
        ttl_ms = int(ttl * 1000) if ttl else 0
        io = self._io
        seqs = []
        for payload in payloads:  # other threads may interleave seqs: the I/O thread reorders
            seq = next(self._seq)
            io.outq.append((seq, to, payload, notify, ttl_ms))
            seqs.append(seq)
        io.issued = max(io.issued, seqs[-1])
        if io.sleeping:
            self._wake()
        elif len(io.outq) > _LEAD:
            # Awake but behind: hand it the GIL. A caller in a tight loop kept it for whole
            # switch intervals while the thread waited to send each part of a frame (one
            # 1025-part send took 115 ms, the length of the caller's loop).
            time.sleep(0)
        return seqs

    def _wait_ticket(self, seq: int, state: WaitFor, timeout: float | None) -> str:
        """Block for the ticket; return the recipient's note (delivered tickets only)."""
        reply = self._request([b"W", b"", str(seq).encode(), state.encode()], timeout)
        outcome, code, reason = msgspec.msgpack.decode(reply[2])
        if outcome == "failed":
            raise DeliveryError(str(TicketId(self.name, self.epoch, seq)), code, reason)
        return str(reason)

    # -- receiving ------------------------------------------------------------------------

    def recv(self, timeout: float | None = None) -> Message:
        """The next message; ZsTimeoutError if none arrives within ``timeout`` seconds."""
        io = self._io
        inbox = io.engine.inbox
        deadline = None if timeout is None else Engine.now() + timeout
        while True:
            self._check_open()
            try:
                received = inbox.popleft()  # atomic: the I/O thread only appends
            except IndexError:
                self._await_mail(deadline, timeout)
                continue
            key = received.key
            msg = Message(key[0], received.payload, key, received.attempt, self, received.expires)
            if self.auto_ack:
                self._io.acks.append((key, ""))  # picked up within ack_delay: no wake-up
                msg._client = None
            return msg

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
        unsent: list[TicketId] = []
        if self._io.is_alive():
            try:
                reply = self._request([b"X", b"", str(timeout).encode()], timeout + 5)
                seqs: list[int] = msgspec.msgpack.decode(reply[2])
                unsent = [TicketId(self.name, self.epoch, s) for s in seqs]
            except (ZsTimeoutError, ClientClosedError):
                pass
        self._closed = True
        self._io.join(timeout + 5)
        for sock in self._callers:
            sock.close(0)
        for bell in self._bells:
            bell.close()
        if not self._io.is_alive():  # else it would poll a closed descriptor, and spin
            self._io.bell.close()
        return unsent

    # -- plumbing -------------------------------------------------------------------------

    def _check_open(self) -> None:
        # core.refusal is set once, by the I/O thread; reading an attribute needs no lock.
        self._raise_if_unusable(self._closed, self._io.engine.core.refusal)

    def _caller(self) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] | None = getattr(self._local, "sock", None)
        if sock is None:
            sock = self._ctx.socket(zmq.DEALER)
            tune(sock)
            sock.setsockopt(zmq.ROUTING_ID, b"c%d" % next(self._idents))  # next() is atomic
            sock.connect(self._io.pipe_url)
            self._local.sock = sock
            self._callers.append(sock)
        return sock

    def _request(self, frames: list[bytes], timeout: float | None) -> list[bytes]:
        """Send a command and block for its reply (replies to earlier, timed-out requests
        are dropped: they carry no data)."""
        sock = self._caller()
        req = str(next(self._req)).encode()
        frames[1] = req
        sock.send_multipart(frames)
        self._io.commands = True  # after the send: the thread reads the pipe once it sees this
        self._io.bell.ring()
        deadline = None if timeout is None else Engine.now() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - Engine.now())
            if not sock.poll(None if left is None else int(left * 1000) + 1):
                if not self._io.is_alive():
                    raise ClientClosedError(f"client {self.name!r} is closed")
                raise ZsTimeoutError(f"no answer within {timeout} s")
            reply = sock.recv_multipart()
            if len(reply) > 1 and reply[1] == req:  # else an M or a stale reply
                return reply

    def _await_mail(self, deadline: float | None, timeout: float | None) -> None:
        """Sleep until the I/O thread says the inbox has mail (or the deadline passes)."""
        io = self._io
        bell: Doorbell | None = getattr(self._local, "bell", None)
        if bell is None:
            bell = self._local.bell = Doorbell()
            self._bells.append(bell)
        io.waiting.add(bell)
        try:
            while not io.engine.inbox:  # looked at after joining ``waiting``: no lost wake-up
                self._check_open()
                left = None if deadline is None else deadline - Engine.now()
                if left is not None and left <= 0:
                    raise ZsTimeoutError(f"no message within {timeout} s")
                if bell.wait(1000 if left is None else min(1000, int(left * 1000) + 1)):
                    io.waiting.add(bell)  # the I/O thread removed us when it rang
                elif not io.is_alive():
                    raise ClientClosedError(f"client {self.name!r} is closed")
        finally:
            io.waiting.discard(bell)

    def _wake(self) -> None:
        """Ring the I/O thread, asleep in poll, once per sleep. Rung already, it waits for
        the GIL: yield it once. Without the yield a caller thread that never blocks (a busy
        loop) starved the I/O thread for seconds (measured: every message of a 2 s paced run
        arrived at its end); a paced caller rings and goes on, since it releases the GIL
        when it next sleeps anyway (thread CPU of a 10k msg/s sender's caller: 34 -> 29 us
        a message without the yield after every ring)."""
        io = self._io
        if io.rung:
            time.sleep(0)
        else:
            io.rung = True
            io.bell.ring()

    @property
    def redeliver_after(self) -> float:
        """Seconds the router waits for an ack (or a ``msg.hold()``) before it delivers a
        message again: hold mail you keep well within it."""
        return self._io.engine.core.redeliver_after  # a float written once per session

    def set_state(self, state: str) -> None:
        """Tell the router what this peer is doing: ``zs peers`` shows it. Said again after
        every reconnect, forgotten when the session ends."""
        self._check_open()
        io = self._io
        io.states.append(state)
        if io.sleeping:
            self._wake()

    def _book(self) -> TicketBook:
        return self._io.engine.book  # read from callers: dict lookups, no lock needed

    def _hold_key(self, key: tuple[str, int, int], reason: str) -> None:
        io = self._io
        io.holds.append((key, reason))
        if io.sleeping:
            self._wake()

    def _ack_key(self, key: tuple[str, int, int], note: str) -> None:
        self._io.acks.append((key, note))  # taken within ack_delay: no wake-up


class _IOThread(threading.Thread):
    """Owns the router socket and the Engine. Talks to callers only over inproc."""

    def __init__(self, client: Client) -> None:
        super().__init__(name=f"zmqswarm-io-{client.name}", daemon=True)
        self.client = client
        self.engine = Engine(client.name, client.epoch, client.options)
        self.pipe_url = f"inproc://zmqswarm-client-{client.epoch:x}"
        self.issued = 0  # highest seq a caller took (written by callers)
        self.settled = 0  # tickets settled so far (written here, read by callers)
        ctx = client._ctx
        self.pipe = ctx.socket(zmq.ROUTER)
        tune(self.pipe)
        self.pipe.bind(self.pipe_url)  # bound before any caller can connect
        self.sock = ctx.socket(zmq.DEALER)
        tune(self.sock)
        self.sock.setsockopt(zmq.ROUTING_ID, routing_id(client.name, client.epoch))
        self.sock.connect(client.url)
        self.outq: deque[tuple[int, str, bytes, bool, int]] = deque()  # appended by callers
        self.acks: deque[tuple[tuple[str, int, int], str]] = deque()  # appended by callers
        self.holds: deque[tuple[tuple[str, int, int], str]] = deque()  # appended by callers
        self.states: deque[str] = deque()  # appended by callers: set_state()
        self.bell = Doorbell()  # rung by callers: the deques or the pipe have work
        self.sleeping = False  # in poll: a caller that appends must ring
        self.rung = False  # a caller rang since the thread last went to sleep
        self.commands = False  # a caller sent a command on the pipe (set after sending)
        self.waiting: set[Doorbell] = set()  # callers asleep in recv(): ring them on mail
        self._ack_poll = client.options.ack_delay
        self._staged: dict[int, tuple[str, bytes, bool, int]] = {}
        self._next = 1
        self._capacity: list[tuple[bytes, bytes, int]] = []
        self._closing: tuple[bytes, bytes, float] | None = None

    def run(self) -> None:
        try:
            self._loop()
        except zmq.ContextTerminated:
            pass
        finally:
            self.sock.close(linger=200)  # time for a Bye to leave; the heartbeat covers the rest
            self.pipe.close(0)

    def _loop(self) -> None:
        engine, sock, bell = self.engine, self.sock, self.bell
        rung = bell.fileno()
        poller = select.poll()  # a bare descriptor poll: zmq.Poller asked both sockets' state
        poller.register(sock.getsockopt(zmq.FD), select.POLLIN)
        poller.register(rung, select.POLLIN)
        now = engine.now()
        engine.core.connect(now)

        def send(parts: list[bytes]) -> None:
            send_parts(sock, parts)

        while True:
            took = self._take_queued(now)
            wait = engine.step(now, send)
            self._serve(now)
            if self._closing is not None and self._finish_close(now):
                return
            if took > 1:
                # A caller is producing fast: hand it the GIL once and look again before
                # going to sleep, so a busy sender fills a batch instead of paying a wake-up
                # per send (measured: most of a tight send() loop's time went into waking
                # this thread). One message a turn is a paced sender: the yield only cost a
                # GIL round trip (28 us of this thread's time a message at 10k msg/s).
                time.sleep(0)
            self.rung = False
            self.sleeping = True
            if self.outq or self.holds or self.states or self.commands:  # before the flag
                wait = 0.0
            elif engine.core.inbox.unacked:  # handed over: the acks come without a wake-up
                wait = min(wait, self._ack_poll)
            # The socket's descriptor only signals a change: sleep only once it says no
            # message waits (asking re-arms it, after this turn's sends may have eaten it).
            if wait > 0 and not readable(sock):
                for fd, _ in poller.poll(int(min(wait, 0.5) * 1000) + 1):
                    if fd == rung:
                        bell.clear()  # what rang is in the deques or the pipe: read below
            self.sleeping = False
            now = engine.now()
            engine.feed_turn(drain(sock, 1024), now)
            if self.commands:
                self.commands = False  # before reading: a command sent later sets it again
                for cmd in drain(self.pipe, 4096):
                    self._command(cmd, now)

    def _command(self, cmd: list[bytes], now: float) -> None:
        caller, op = cmd[0], cmd[1]
        kind = op[:1]
        if kind == b"W":
            self._watch(caller, cmd[2], int(cmd[3]), cmd[4].decode())  # type: ignore[arg-type]
        elif kind == b"P":
            self._capacity.append((caller, cmd[2], int(cmd[3])))
        elif kind == b"X":
            self._closing = (caller, cmd[2], now + float(cmd[3]))

    def _take_queued(self, now: float) -> int:
        """Move what callers appended into the core: sends in seq order, then acks. Returns
        how many sends it took."""
        core, outq, staged = self.engine.core, self.outq, self._staged
        took = len(outq)
        while outq:
            seq, to, payload, notify, ttl_ms = outq.popleft()
            if seq == self._next and not staged:  # the common case: one caller, in order
                core.submit(to, payload, now, notify=notify, ttl_ms=ttl_ms)
                self._next += 1
                continue
            staged[seq] = (to, payload, notify, ttl_ms)
            while self._next in staged:  # callers in several threads raced: reorder
                to, payload, notify, ttl_ms = staged.pop(self._next)
                core.submit(to, payload, now, notify=notify, ttl_ms=ttl_ms)
                self._next += 1
        holds = self.holds
        while holds:
            key, reason = holds.popleft()
            core.hold(key, reason, now)
        states = self.states
        while states:
            core.set_state(states.popleft(), now)
        acks = self.acks
        if acks:
            self._ack_poll = core.options.ack_delay
            while acks:
                core.ack(*acks.popleft())
        else:  # the application holds its messages: look less often
            self._ack_poll = min(self._ack_poll * 2, 0.064)
        return took

    def _watch(self, caller: bytes, req: bytes, seq: int, want: WaitFor) -> None:
        def reply(outcome: tuple[str, DeliveryError | None]) -> None:
            state, err = outcome
            code, reason = (err.code, err.reason) if err else ("", "")
            if state == "delivered":
                reason = self.engine.book.notes.get(seq, "")
            self.pipe.send_multipart([caller, b"T", req, _OUTCOME.encode((state, code, reason))])

        self.engine.book.wait(seq, want, self.engine.unsettled, reply)

    def _serve(self, now: float) -> None:
        engine = self.engine
        self.settled = self._next - 1 - len(engine.core.window)
        if engine.inbox:  # mail for the application: its acks will follow soon
            self._ack_poll = engine.core.options.ack_delay
        waiting = self.waiting
        if waiting and (engine.inbox or engine.core.refusal is not None):
            ring_each(waiting)  # every recv() waiting now: they pop it, or raise the refusal
            # No yield here: the woken caller gets the GIL when this thread next sleeps in
            # poll, a few us on. time.sleep(0) is a real timer sleep on Linux (20 us with
            # 1 us of timer slack, 86 us with the default 50 us) and held this thread off
            # the next message: without it, p50 at 10k msg/s fell from 392-415 us (6 runs)
            # to 330-344 (12 runs, interleaved; each process on its own core), p99 unchanged.
        if self._capacity:
            outstanding = self.issued - self.settled
            keep = []
            for caller, req, limit in self._capacity:
                if outstanding < limit:
                    self.pipe.send_multipart([caller, b"T", req, _OUTCOME.encode(("ok", "", ""))])
                else:
                    keep.append((caller, req, limit))
            self._capacity = keep

    def _finish_close(self, now: float) -> bool:
        assert self._closing is not None
        caller, req, deadline = self._closing
        core = self.engine.core
        if len(core.window) and now < deadline and core.refusal is None:
            return False
        core.close(now)
        for parts in core.outgoing(now):
            self.sock.send_multipart(parts)
        unsent = list(core.window.pending)
        self.pipe.send_multipart([caller, b"T", req, msgspec.msgpack.encode(unsent)])
        return True
