"""``AsyncObserver``: the asyncio driver of ObserverCore, beside ``Observer``. The same fold,
the same snapshots; it waits on the event loop instead of blocking the thread."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import TypeVar

import zmq
import zmq.asyncio

from zmqswarm.errors import ZmqswarmError
from zmqswarm.observe.base import BaseObserver, answer_kind
from zmqswarm.observe.query import AdminSession
from zmqswarm.protocol import Frame, WatchedState, Welcome, encode
from zmqswarm.transport import recv_parts

__all__ = ["AsyncObserver"]

T = TypeVar("T")


class AsyncObserver(BaseObserver):
    """Watch one router from asyncio: ``async for state in observer.watch(): ...``. Arguments
    as ``Observer``'s."""

    async def snapshot(self) -> WatchedState:
        """The state (and topics) now, in one conversation (no subscription)."""
        await self._sync(None, self.timeout)
        return self.state

    async def watch(self, tick: float = 0.5) -> AsyncGenerator[WatchedState, None]:
        """Follow the router (see ``Observer.watch``)."""
        sub = self._open_sub()
        waiter = zmq.asyncio.Socket.from_socket(sub)
        try:
            await self._sync(sub, self.timeout)
            yield self.state
            heard = time.monotonic()
            while True:
                if await waiter.poll(int(tick * 1000)):
                    heard = time.monotonic()
                    if not self._take(sub):
                        await self._resync(sub, self.timeout)
                elif self._quiet(time.monotonic() - heard):
                    if await self._resync(sub, min(self.timeout, 3 * tick)):
                        heard = time.monotonic()
                yield self.state
        finally:
            waiter.close(0)  # and with it ``sub``, the socket it waits for

    async def _resync(self, sub: zmq.Socket[bytes], timeout: float) -> bool:
        try:
            await self._sync(sub, timeout)
        except ZmqswarmError:
            if not self.core.connected:
                self.silent = True
            return False
        self.silent = False
        return True

    async def _sync(self, sub: zmq.Socket[bytes] | None, timeout: float) -> None:
        plan = self.core.sync(subscribe=sub is not None)
        session = AdminSession(self.url, timeout=timeout, context=self._ctx, curve=self.keys)
        # Waits for the same socket on the loop; closing it closes the session's socket.
        waiter = zmq.asyncio.Socket.from_socket(session.sock)
        try:
            answer = None
            while (question := self._question(plan, answer, sub)) is not None:
                answer = await _ask(session, waiter, question, answer_kind(question))
        finally:
            session.bye()
            session.close_monitor()
            waiter.close()


async def _ask(
    session: AdminSession, waiter: zmq.asyncio.Socket, question: Frame, kind: type[T]
) -> tuple[T, list[bytes]]:
    """``session.ask``, waiting on the event loop."""
    if not session.welcomed:
        await _answer(session, waiter, Welcome)
        session.welcomed = True
    session.sock.send(encode(question))
    return await _answer(session, waiter, kind)


async def _answer(
    session: AdminSession, waiter: zmq.asyncio.Socket, kind: type[T]
) -> tuple[T, list[bytes]]:
    while True:
        if not await waiter.poll(session.wait_ms()):
            raise session.no_answer()
        while session.sock.poll(0):
            answer = session.take(recv_parts(session.sock), kind)
            if answer is not None:
                return answer
