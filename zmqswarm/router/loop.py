"""``Router``: the poll loop around RouterCore. One thread owns the ROUTER socket.

Per turn: wait for input or the next timer, drain about ``batch`` message parts without
blocking, let the core decide, then send everything it produced (receipts coalesced per sender
per turn). The budget counts parts, not frames: a Send frame may carry 1024 payloads, and a
turn that took a sender's whole window at once receipted it only at its end, so sender and
router took turns instead of overlapping.

With a journal (``data_dir``), the core's batches go to the journal's writer thread after
each turn, and receipts wait for its answer: while one is outstanding the loop waits on both
sockets (a zmq poll) instead of blocking in a receive on the ROUTER alone.

A send that libzmq refuses is handed back to the core, which keeps the messages in the
mailbox: ROUTER_MANDATORY means nothing is dropped silently. EHOSTUNREACH means the peer's
connection is gone: its session ends at once (its unacked mail waits for the next holder of
the name). Connections die by ZMTP heartbeat timeout when a peer stops or dies, or the network
does; a socket monitor reports each drop (without naming the peer), and the loop then probes
every session: the probe to a gone peer fails, and that session ends.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import logging
import os
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import zmq

from zmqswarm.errors import ConfigError, RouterInUseError
from zmqswarm.keys import ZAP_DOMAIN, ServerKeys, secure_server
from zmqswarm.protocol import Heartbeat, RouterCore, RouterOptions, Update, encode
from zmqswarm.protocol.access import Access
from zmqswarm.transport import (
    ASK_FIRST,
    heartbeats,
    ipc_path,
    readable,
    recv_parts,
    recv_routed,
    send_routed,
)

from .auth import AllowList, Gatekeeper
from .crash import crash_point
from .endpoints import bind_endpoint, exposed, pub_urls
from .journal import Journal

__all__ = ["Router"]


def _recv_keyed(sock: zmq.Socket[bytes], flags: int) -> tuple[zmq.Frame, list[bytes]]:
    """``recv_routed`` for a CURVE socket: the identity part as a Frame, which carries the
    connection's User-Id."""
    return sock.recv(flags, copy=False), recv_parts(sock)


log = logging.getLogger("zmqswarm.router")
_PROBE = encode(Heartbeat())
_NOBLOCK = int(zmq.NOBLOCK)
_MONITOR_EVERY = 0.05  # seconds between looks at the connection monitor
_REPROBE = 0.1  # a drop is probed for twice: at once, and after libzmq has surely settled
_RELOOK_ALLOW = 1.0  # seconds between looks at the allow list's directory
_HANDSHAKE_MS = 5000  # a connection that has not finished its handshake by then is closed
_MONITORED = (
    zmq.EVENT_ACCEPTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
_COUNTED: dict[int, str] = {
    zmq.EVENT_ACCEPTED: "connections_accepted",
    zmq.EVENT_DISCONNECTED: "connections_closed",
}
_FAILED: dict[int, str] = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "handshake_refused_key",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake_failed_protocol",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake_failed",
}


class Router:
    """A zmqswarm router bound to one or more endpoints.

    Args:
        binds: endpoints (``ipc://path``, ``tcp://127.0.0.1:5555``...).
        options: limits and timers (see RouterOptions).
        batch: message parts (about one per payload) drained per turn before output is
            flushed; a turn takes at least one whole frame.
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
    ) -> None:
        self.binds = binds
        self.curve = curve
        if (curve is None) != (allow is None):
            raise ConfigError("CURVE needs both the router's secret key and an allow list")
        open_to = [url for url in binds if exposed(url)]
        if curve is None and open_to and not insecure:
            raise ConfigError(
                f"{open_to[0]} is reachable from other hosts: give the router a CURVE key"
                " and an allow list (--curve-secret FILE --allow DIR; see `zs keys`), or"
                " --insecure to let anyone who reaches it in"
            )
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
        self._probe_at: list[float] = []  # sweeps due
        self.endpoints: list[str] = []
        self.gate: Gatekeeper | None = None
        self._next_allow_look = 0.0
        self._reload_asked = False
        self.journal: Journal | None = None
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
                self.gate = Gatekeeper(self._ctx, AllowList(allow), ZAP_DOMAIN)
            self.sock = self._bind()
        except BaseException:
            if self.gate is not None:
                self.gate.close()
            if self.journal is not None:
                self.journal.close()
            raise
        self.monitor: zmq.Socket[bytes] = self.sock.get_monitor_socket(_MONITORED)
        try:
            self.pub = self._bind_pub(publish if publish is not None else pub_urls(binds))
        except BaseException:
            self.close()
            raise

    def _bind(self) -> zmq.Socket[bytes]:
        sock: zmq.Socket[bytes] = self._ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        # A peer that reconnects under the same identity before its old connection was seen
        # to die takes the identity over, instead of being refused (a race otherwise). Not
        # with CURVE: there any trusted key that learned a live peer's routing id (PeerList
        # and Deliver show epochs) could take it, and the peer's own connection, still up,
        # would go on under an id libzmq made up, its session ended and never said so. The
        # cost: a reconnect that beats the heartbeat timeout on its old connection gets
        # nothing through as its id (docs/protocol.md, section 2).
        sock.setsockopt(zmq.ROUTER_HANDOVER, 0 if self.curve is not None else 1)
        opts = self.core.options
        heartbeats(sock, opts.heartbeat, opts.heartbeat_timeout)
        self._secure(sock)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        # libzmq's own guard against absurd frames; the core Nacks anything over max_payload.
        sock.setsockopt(zmq.MAXMSGSIZE, 4 * self.core.options.max_payload + (1 << 16))
        try:
            for url in self.binds:
                path = ipc_path(url)
                if path is not None:
                    self._lock(url, path)
                try:
                    bind_endpoint(sock, url)
                except zmq.ZMQError as exc:  # EADDRINUSE only
                    raise RouterInUseError(url, None) from exc
                if path is not None:
                    path.chmod(0o600)
                self.endpoints.append(sock.getsockopt_string(zmq.LAST_ENDPOINT))
        except BaseException:
            sock.close(0)
            self._unlock()
            raise
        return sock

    def _bind_pub(self, urls: list[str]) -> zmq.Socket[bytes]:
        pub: zmq.Socket[bytes] = self._ctx.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.setsockopt(zmq.SNDHWM, 1000)  # a stalled observer misses Updates, then resyncs
        self._secure(pub)
        try:
            for url in urls:
                try:
                    bind_endpoint(pub, url)
                except zmq.ZMQError:  # EADDRINUSE only: a port some other program holds
                    raise ConfigError(f"cannot publish on {url}: address in use") from None
                path = ipc_path(url)
                if path is not None:
                    path.chmod(0o600)
                self.core.publish_endpoints.append(pub.getsockopt_string(zmq.LAST_ENDPOINT))
        except BaseException:
            pub.close(0)
            raise
        return pub

    def _secure(self, sock: zmq.Socket[bytes]) -> None:
        sock.setsockopt(zmq.HANDSHAKE_IVL, _HANDSHAKE_MS)
        if self.curve is not None:
            secure_server(sock, self.curve)

    def _lock(self, url: str, path: Path) -> None:
        """Binding an ipc path would silently steal the socket file from a live router, so
        hold an flock beside it. A crashed router's lock is released by the kernel."""
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise RouterInUseError(url, int(pid) if pid.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._locks.append(fd)

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
        core, sock, journal, gate = self.core, self.sock, self.journal, self.gate
        handle, batch = core.handle, self.batch
        recv = sock.recv
        take = recv_routed
        if gate is not None:
            # Each frame carries the name of the key its connection authenticated with.
            handle, take = self._admit, _recv_keyed  # type: ignore[assignment]
            recv = functools.partial(sock.recv, copy=False)  # type: ignore[assignment]
        timeout_ms = -2  # RCVTIMEO as last set: set only when it changes
        acked = core.stats["acked"]  # for the after_ack crash point
        both = zmq.Poller()
        both.register(sock, zmq.POLLIN)
        if journal is not None:
            both.register(journal.sock, zmq.POLLIN)
        if gate is not None:
            both.register(gate.sock, zmq.POLLIN)
        try:
            while True:
                now = time.monotonic()
                if self._stop_at is not None and (now >= self._stop_at or core.drained()):
                    break
                due = min(core.next_deadline(), core.publisher.next_at, self._next_look)
                wait_ms = int(min(max(0.0, due - now), 0.1) * 1000) + 1
                if gate is not None or (journal is not None and journal.waiting()):
                    # Wake for a handshake to answer, the journal's answer, or a frame.
                    both.poll(wait_ms)
                    if gate is not None:
                        gate.answer()
                    try:
                        identity = recv(_NOBLOCK)
                    except zmq.Again:
                        identity = None
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
                    handle(identity, parts, now)
                    taken = len(parts)
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
                        handle(identity, parts, now)
                        taken += len(parts)
                        frames += 1
                if now >= self._next_look:
                    self._look(now)
                    if gate is not None:
                        self._watch_allow_list(gate, now)
                core.tick(now)
                if journal is not None:
                    self._hear_journal(journal, now)
                    if core.stats["acked"] != acked:
                        acked = core.stats["acked"]
                        crash_point("router.after_ack")
                self._flush(now)
                if journal is not None:
                    written = core.take_journal()
                    if written is not None:
                        journal.submit(written)
                for update in core.take_updates(now):
                    self._publish(update)
                for line in core.take_logs():
                    log.warning("%s", line)
            if journal is not None:
                self._finish_journal(journal)
            self._connection_events()  # counted before the counters are read
        except zmq.ContextTerminated:
            pass
        finally:
            # A clean stop lets what it sent last leave (a drained Deliver, a receipt).
            self.close(linger=0.5 if self._stop_at is not None else 0.0)

    def _admit(self, identity: zmq.Frame, parts: list[bytes], now: float) -> None:
        self.core.admit(identity.bytes, str(identity.get("User-Id")), parts, now)

    def reload(self) -> None:
        """Read the allow list again at the next turn (SIGHUP): a key whose file is gone is
        revoked, and its live sessions end."""
        self._reload_asked = True

    def _watch_allow_list(self, gate: Gatekeeper, now: float) -> None:
        if not self._reload_asked and now < self._next_allow_look:
            return
        self._next_allow_look = now + _RELOOK_ALLOW
        if not self._reload_asked and not gate.allow.changed():
            return
        self._reload_asked = False
        added, removed = gate.allow.reload()
        access = self.core.access
        assert access is not None
        for key in added:
            access.restore(key)
        for key in sorted(removed):
            self.core.revoke(key, now)
        if removed:
            # A SUB keeps its connection (and the feed) whatever its key: the PUB is made
            # anew, and every observer must pass the allow list again to reconnect.
            self._rebind_pub()
            log.warning("revoked %s: their sessions ended", ", ".join(sorted(removed)))

    def _rebind_pub(self) -> None:
        urls = list(self.core.publish_endpoints)
        self.pub.close(0)
        self.core.publish_endpoints.clear()
        deadline = time.monotonic() + 2.0
        while True:
            try:
                self.pub = self._bind_pub(urls)
                return
            except ConfigError:  # the old listener is still closing (libzmq's reaper)
                if time.monotonic() >= deadline:
                    raise
                self.core.publish_endpoints.clear()
                time.sleep(0.01)

    def _hear_journal(self, journal: Journal, now: float) -> None:
        heard = False
        for durable, failure in journal.answers():
            if failure:
                self.core.journal_failing(failure, now)
            else:
                self.core.durable(durable, now)
                heard = True
        if heard:
            crash_point("router.before_receipt")
            self._flush(now)
            crash_point("router.after_receipt")
        while journal.pages:
            self.core.paged_in(*journal.pages.popleft(), now)

    def _finish_journal(self, journal: Journal) -> None:
        """A clean stop: the last batch to disk, its receipts out, and say what stays."""
        written = self.core.take_journal()
        if written is not None:
            journal.submit(written)
        deadline = time.monotonic() + 5.0
        while journal.waiting() and time.monotonic() < deadline:
            if journal.sock.poll(100):
                self._hear_journal(journal, time.monotonic())
        self._flush(time.monotonic())
        kept = self.core.kept()
        where = journal.directory
        if kept:
            names = ", ".join(f"{name} {n}" for name, n in list(kept.items())[:10])
            more = f" and {len(kept) - 10} more names" if len(kept) > 10 else ""
            total = sum(kept.values())
            log.info("journal %s keeps %d messages for: %s%s", where, total, names, more)
        else:
            log.info("journal %s keeps no messages", where)

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
        if readable(self.monitor) and self._connection_events():
            self._probe_at = [now, now + _REPROBE]
        if self._probe_at and now >= self._probe_at[0]:
            self._probe_at.pop(0)
            for identity in self.core.probe_targets():
                if not self._reachable(identity):
                    self.core.peer_gone(identity, now)
        if self._probe_at:
            self._next_look = min(self._next_look, self._probe_at[0])

    def _connection_events(self) -> bool:
        """Count connections opened and closed, and the handshakes that failed; whether a
        connection dropped. Every connection that closes is counted once in
        ``connections_closed``, whoever closed it and why: a failed handshake, a frame
        over ZMQ_MAXMSGSIZE, a heartbeat timeout, a peer that left."""
        dropped, stats = False, self.core.stats
        while readable(self.monitor):
            event = int.from_bytes(self.monitor.recv_multipart(_NOBLOCK)[0][:2], "little")
            counter = _FAILED.get(event) or _COUNTED.get(event)
            if counter is not None:
                stats[counter] = stats.get(counter, 0) + 1
            if event == zmq.EVENT_DISCONNECTED:
                dropped = True
        return dropped

    def _flush(self, now: float) -> None:
        sock, core = self.sock, self.core
        failed: set[bytes] = set()
        for identity, parts, first_dseq in core.take_output(now):
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
                    core.peer_gone(identity, now)  # not retried on every turn: it ends
                elif exc.errno != errno.EAGAIN:  # EAGAIN: its pipe is full, try next turn
                    log.warning("send to %r failed: %s", identity, exc)

    def _publish(self, update: Update) -> None:
        try:
            self.pub.send(encode(update), zmq.NOBLOCK)
        except zmq.Again:  # PUB drops at its HWM anyway; the Update's number tells observers
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
        journal = getattr(self, "journal", None)
        if journal is not None:
            self.journal = None
            if not journal.close():
                log.warning("journal %s: the last changes may not be on disk", journal.directory)
        self._unlock()
