"""``Router``: the poll loop around RouterCore. One thread owns the ROUTER socket.

Per turn: wait for input or the next timer, drain about ``batch`` messages (not frames: a
Send may carry 1024) without blocking, let the core decide, then send what it produced.

With a journal (``data_dir``), the core's batches go to the journal's writer thread after
each turn, and receipts wait for its answer: while one is outstanding the loop polls both
sockets. With CURVE, it polls the ZAP handler's socket too (auth.py), and each frame's key
is checked against the names it may use (protocol/access.py).

A send that libzmq refuses is handed back to the core, which keeps the messages in the
mailbox: ROUTER_MANDATORY means nothing is dropped silently. EHOSTUNREACH means the peer's
connection is gone: its session ends at once (its unacked mail waits for the next holder of
the name). Connections die by ZMTP heartbeat timeout when a peer stops or dies, or the network
does; a socket monitor reports each drop (without naming the peer), and the loop then probes
every session: the probe to a gone peer fails, and that session ends.
"""

from __future__ import annotations

import errno
import functools
import logging
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import zmq

from zmqswarm.keys import ZAP_DOMAIN, ServerKeys
from zmqswarm.protocol import Heartbeat, RouterCore, RouterOptions, encode
from zmqswarm.protocol.access import Access
from zmqswarm.protocol.router_state import Output
from zmqswarm.transport import (
    ASK_FIRST,
    readable,
    recv_parts,
    recv_routed,
    recv_routed_frame,
    send_routed,
)

from .auth import AllowList, Gatekeeper
from .crash import crash_point
from .endpoints import (
    MONITORED,
    bind_pub,
    bind_router,
    check_exposure,
    connection_events,
    pub_urls,
)
from .journal import Journal
from .metrics import MetricsServer
from .revocation import Revocation
from .subscriptions import Subscriptions
from .sweeps import Sweeps

__all__ = ["Router"]


log = logging.getLogger("zmqswarm.router")
_PROBE = encode(Heartbeat())
_NOBLOCK = int(zmq.NOBLOCK)
_MONITOR_EVERY = 0.05  # seconds between looks at the connection monitor


class Router(Revocation):
    """A zmqswarm router bound to one or more endpoints.

    Args:
        binds: endpoints (``ipc://path``, ``tcp://127.0.0.1:5555``...).
        options: limits and timers (see RouterOptions).
        batch: messages (a frame without payloads counts as one) drained per turn before
            output is flushed; a turn takes at least one whole frame.
        drain_timeout: on shutdown, seconds to keep delivering what connected peers can take.
        publish: PUB endpoints for observers (``zs monitor``); default one beside each bind:
            ``ipc://PATH.pub``, or a free port on the same host for tcp. Observers learn them
            from the Snapshot they ask for, so only the router's own URL need be known.
        data_dir: keep a journal there (receipts mean on disk; a restart on the same
            directory restores what was receipted). None: everything lives in memory.
        curve: the router's CURVE key pair: every socket (observers' PUB too) then lets in
            only the keys in ``allow``, a directory of public key files, and each key only
            under the names ``names`` gives it (default: its own name, and ``KEY.*``).
        insecure: bind a non-loopback tcp address without CURVE (refused otherwise).
        metrics: ``HOST:PORT`` to serve Prometheus metrics on, from this loop (metrics.py).
    """

    def __init__(
        self,
        binds: list[str],
        *,
        options: RouterOptions | None = None,
        batch: int = 1024,
        drain_timeout: float = 2.0,
        context: zmq.Context[Any] | None = None,
        publish: list[str] | None = None,
        data_dir: Path | None = None,
        curve: ServerKeys | None = None,
        allow: Path | None = None,
        names: dict[str, list[str]] | None = None,
        insecure: bool = False,
        metrics: str | None = None,
    ) -> None:
        self.binds = binds
        self.curve = curve
        check_exposure([*binds, *(publish or [])], curve, allow, insecure)
        wall_offset = time.time() - time.monotonic()  # the journal keeps wall-clock times
        self.core = RouterCore(
            epoch=int(time.time() * 1000),
            options=options,
            reachable=self._reachable,
            started=time.monotonic(),
            journaled=data_dir is not None,
            wall_offset=wall_offset,
            access=Access(names) if curve is not None else None,
        )
        self.batch = batch
        self.drain_timeout = drain_timeout
        self._ctx = context or zmq.Context.instance()
        self._locks: list[int] = []
        self._stop_at: float | None = None
        self._next_look = 0.0  # at the monitor
        self._sweeps = Sweeps()  # when every session is probed
        self._renew = False  # the ROUTER socket is to be made anew (a key was revoked)
        self.endpoints: list[str] = []
        self.gate: Gatekeeper | None = None
        self.journal: Journal | None = None
        self.metrics: MetricsServer | None = None
        if data_dir is not None:  # before binding: a damaged journal stops us first
            self.journal = Journal(
                data_dir,
                context=self._ctx,
                wall_offset=wall_offset,
                dead_max=self.core.options.dead_max,
                resident_bytes=self.core.options.resident_bytes,
            )
            self.core.restore(self.journal.restored, time.monotonic())
        try:
            if allow is not None:  # before binding: with no handler, nobody gets in
                stats = self.core.stats  # the counters observers see, as Subscriptions'
                self.gate = Gatekeeper(self._ctx, AllowList(allow), ZAP_DOMAIN, stats)
                assert self.core.access is not None
                self.core.access.keys = dict(self.gate.allow.keys)
            self.sock = self._bind()
        except BaseException:
            if self.gate is not None:
                self.gate.close()
            if self.journal is not None:
                self.journal.close()
            raise
        self.monitor: zmq.Socket[bytes] = self.sock.get_monitor_socket(MONITORED)
        try:
            urls = publish if publish is not None else pub_urls(binds)
            self.pub, self.core.publish_endpoints[:] = bind_pub(self._ctx, urls, self.curve)
            self.subscriptions = Subscriptions(self.core.stats, self.core.options.max_topics)
            if metrics:
                self.metrics = MetricsServer(metrics, self.core, self._ctx)
        except BaseException:
            self.close()
            raise

    def _bind(self) -> zmq.Socket[bytes]:
        try:
            sock, self.endpoints = bind_router(
                self._ctx, self.binds, self.core.options, self.curve, self._locks
            )
        except BaseException:
            self._unlock()
            raise
        return sock

    def _unlock(self) -> None:
        for fd in self._locks:
            os.close(fd)
        self._locks.clear()

    # -- running --------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT start a clean shutdown (drain, then exit); SIGHUP re-reads
        the allow list."""

        def stop(signum: int, frame: FrameType | None) -> None:
            self.stop()

        def reload(signum: int, frame: FrameType | None) -> None:
            self.reload()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def stop(self) -> None:
        """Stop accepting; deliver to connected peers for up to ``drain_timeout``; exit."""
        if self._stop_at is None:
            self._stop_at = time.monotonic() + self.drain_timeout
            self.core.begin_drain()

    def run(self) -> None:
        try:
            while self._serve():
                self._renew_router(time.monotonic())
            if self.journal is not None:
                kept = self.journal.finish(self.core, self._flush)
                log.info("journal %s %s", self.journal.directory, kept)
            connection_events(self.monitor, self.core.stats)  # counted before they are read
        except zmq.ContextTerminated:
            pass
        finally:
            # A clean stop lets what it sent last leave (a drained Deliver, a receipt).
            self.close(linger=0.5 if self._stop_at is not None else 0.0)

    def _serve(self) -> bool:
        """Turn until stopped (False), or until the ROUTER socket must be made anew (True)."""
        core, sock, journal, gate = self.core, self.sock, self.journal, self.gate
        handle, batch = core.handle, self.batch
        recv = sock.recv
        take = recv_routed
        if gate is not None:
            # Each frame carries the name of the key its connection authenticated with.
            handle, take = self._admit, recv_routed_frame  # type: ignore[assignment]
            recv = functools.partial(sock.recv, copy=False)  # type: ignore[assignment]
        timeout_ms = -2  # RCVTIMEO as last set: set only when it changes
        acked = core.stats["acked"]  # for the after_ack crash point
        both = zmq.Poller()
        both.register(sock, zmq.POLLIN)
        if journal is not None:
            both.register(journal.sock, zmq.POLLIN)
        if gate is not None:
            both.register(gate.sock, zmq.POLLIN)
        while True:
            now = time.monotonic()
            if self._stop_at is not None and (now >= self._stop_at or core.drained()):
                return False
            due = min(core.next_deadline(), core.publisher.next_at, self._next_look)
            due = min(due, core.topics.next_deadline())
            wait_ms = int(min(max(0.0, due - now), 0.1) * 1000) + 1
            if gate is not None or (journal is not None and journal.waiting()):
                # Wake for a handshake to answer, the journal's answer, or a frame; ask
                # only the sockets the poll found ready.
                ready = dict(both.poll(wait_ms))
                if gate is not None and gate.sock in ready:
                    gate.answer()
                identity = None
                if sock in ready:
                    try:
                        identity = recv(_NOBLOCK)
                    except zmq.Again:
                        pass
            else:
                # One blocking receive per turn, bounded by the next timer: libzmq waits
                # on its own descriptor, where a Poller would add a poll call and two
                # EVENTS queries (each a syscall) to every turn. The monitor can wait.
                if wait_ms != timeout_ms:
                    sock.setsockopt(zmq.RCVTIMEO, wait_ms)
                    timeout_ms = wait_ms
                try:
                    identity = recv()
                except zmq.Again:
                    identity = None
            now = time.monotonic()
            if identity is not None:
                parts = recv_parts(sock)
                taken = handle(identity, parts, now)
                # A steady rate brings a frame a turn: what it delivers leaves before the
                # socket is asked for more (a system call) and before the timers; receipts
                # wait for the turn's end.
                self._send_out(core.take_deliveries(now), now)
                # Ask for the next one or two (a steady rate rarely has more), then read
                # until Again: an exception costs more than a question, once.
                frames = 1
                while taken < batch:
                    if frames <= ASK_FIRST and not readable(sock):
                        break
                    try:
                        identity, parts = take(sock, _NOBLOCK)
                    except zmq.Again:
                        break
                    taken += handle(identity, parts, now)
                    frames += 1
            if now >= self._next_look:
                self._look(now)
                if gate is not None:
                    self._revoke(gate.refresh(now), now)
            core.tick(now)
            if journal is not None:
                journal.hear(core, now, self._flush)
                if core.stats["acked"] != acked:
                    acked = core.stats["acked"]
                    crash_point("router.after_ack")
            self._flush(now)
            if journal is not None:
                written = core.take_journal()
                if written is not None:
                    journal.submit(written)
            for update in core.take_updates(now):
                self._publish([encode(update)])
            for parts in core.take_topics(now):
                self._publish(parts)
            for line in core.take_logs():
                log.warning("%s", line)
            if self._renew:
                return True

    def _admit(self, identity: zmq.Frame, parts: list[bytes], now: float) -> int:
        return self.core.admit(identity.bytes, str(identity.get("User-Id")), parts, now)

    def _reachable(self, identity: bytes) -> bool:
        """Probe: ROUTER_MANDATORY fails at once if the peer's connection is gone."""
        try:
            send_routed(self.sock, identity, [_PROBE])
        except zmq.ZMQError as exc:
            return exc.errno != errno.EHOSTUNREACH
        return True

    def _look(self, now: float) -> None:
        """Read the connection monitor; after a drop, probe every session (now, and once
        more shortly), ending those whose connection is gone."""
        self._next_look = now + _MONITOR_EVERY
        if self.metrics is not None:
            self.metrics.serve(now)
        if readable(self.monitor) and connection_events(self.monitor, self.core.stats):
            self._sweeps.dropped(now)
        if self._sweeps.due(now):
            for identity in self.core.probe_targets():
                if not self._reachable(identity):
                    self.core.peer_gone(identity, now)
        self._next_look = min(self._next_look, self._sweeps.next_at())

    def _flush(self, now: float) -> None:
        self._send_out(self.core.take_output(now), now)

    def _send_out(self, outputs: list[Output], now: float) -> None:
        sock, core = self.sock, self.core
        failed: set[bytes] = set()
        for identity, parts, first_dseq in outputs:
            if identity in failed:
                if first_dseq:
                    core.undeliver(identity, first_dseq)
                continue  # after a failure, nothing more to this peer: order would break
            try:
                send_routed(sock, identity, parts)
            except zmq.ZMQError as exc:
                failed.add(identity)
                if first_dseq:
                    core.undeliver(identity, first_dseq)  # back to the mailbox, uncounted
                if exc.errno == errno.EHOSTUNREACH:
                    if self._sweeps.may_end(now):  # else a sweep decides, after the grace
                        core.peer_gone(identity, now)  # not retried on every turn: it ends
                elif exc.errno != errno.EAGAIN:  # EAGAIN: its pipe is full, try next turn
                    log.warning("send to %r failed: %s", identity, exc)

    def _publish(self, parts: list[bytes]) -> None:
        self.subscriptions.read(self.pub)  # those that came before it: as a PUB would
        try:
            self.pub.send_multipart(parts, zmq.NOBLOCK)
        except zmq.Again:  # PUB drops at its HWM anyway: Updates and ticks are numbered
            pass

    def close(self, linger: float = 0.0) -> None:
        monitor = getattr(self, "monitor", None)
        if monitor is not None and not monitor.closed:
            self.sock.disable_monitor()
            monitor.close(0)
        if not self.sock.closed:
            self.sock.close(int(linger * 1000))
        pub = getattr(self, "pub", None)
        if pub is not None and not pub.closed:
            pub.close(0)
        gate = getattr(self, "gate", None)
        if gate is not None:
            gate.close()
        if self.metrics is not None:
            self.metrics.close()
        journal = getattr(self, "journal", None)
        if journal is not None:
            self.journal = None
            if not journal.close():
                log.warning("journal %s: the last changes may not be on disk", journal.directory)
        self._unlock()
