"""Where a router listens and runs: binding its endpoints (one clear line when it cannot),
the PUB endpoints beside them, and pinning it to CPUs."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import zmq

from zmqswarm.errors import ConfigError, RouterInUseError
from zmqswarm.keys import ServerKeys, secure_server
from zmqswarm.private import make_dirs, private_dir
from zmqswarm.protocol import RouterCore, RouterOptions
from zmqswarm.transport import default_router_url, heartbeats, ipc_path, readable

from .subscriptions import feed_socket

__all__ = [
    "MONITORED",
    "bind_endpoint",
    "bind_pub",
    "bind_router",
    "check_exposure",
    "connection_events",
    "exposed",
    "pin_to_cpus",
    "pub_urls",
    "raise_fd_limit",
    "rebind_pub",
    "renew_router",
    "secure",
]

T = TypeVar("T")

_HANDSHAKE_MS = 5000  # a connection that has not finished its handshake by then is closed
MONITORED = (
    zmq.EVENT_ACCEPTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)
"""What the router's socket monitor reports."""
_COUNTED: dict[int, str] = {
    zmq.EVENT_ACCEPTED: "connections_accepted",
    zmq.EVENT_DISCONNECTED: "connections_closed",
}
_FAILED: dict[int, str] = {
    zmq.EVENT_HANDSHAKE_FAILED_AUTH: "handshake_refused_key",
    zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL: "handshake_failed_protocol",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake_failed",
}


def secure(sock: zmq.Socket[Any], keys: ServerKeys | None) -> None:
    """Every socket the router binds: a bounded handshake, and CURVE if it has keys."""
    sock.setsockopt(zmq.HANDSHAKE_IVL, _HANDSHAKE_MS)
    if keys is not None:
        secure_server(sock, keys)


def connection_events(monitor: zmq.Socket[Any], stats: dict[str, int]) -> bool:
    """Count connections opened and closed, and the handshakes that failed; whether a
    connection dropped. Every connection that closes is counted once in
    ``connections_closed``, whoever closed it and why: a failed handshake, a frame over
    ZMQ_MAXMSGSIZE, a heartbeat timeout, a peer that left."""
    dropped = False
    while readable(monitor):
        event = int.from_bytes(monitor.recv_multipart(zmq.NOBLOCK)[0][:2], "little")
        counter = _FAILED.get(event) or _COUNTED.get(event)
        if counter is not None:
            stats[counter] = stats.get(counter, 0) + 1
        if event == zmq.EVENT_DISCONNECTED:
            dropped = True
    return dropped


def bind_router(
    ctx: zmq.Context[Any],
    binds: list[str],
    options: RouterOptions,
    keys: ServerKeys | None,
    locks: list[int] | None,
) -> tuple[zmq.Socket[bytes], list[str]]:
    """The router's ROUTER socket, bound on ``binds``; and the endpoints it got. The flock
    of each ipc endpoint is added to ``locks`` (the caller releases them); None: the caller
    holds them already."""
    sock: zmq.Socket[bytes] = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    # A peer that reconnects under the same identity before its old connection was seen
    # to die takes the identity over, instead of being refused. Without handover libzmq
    # also keeps, until the socket closes, the pipe of every connection that came under an
    # id in use. With CURVE a live peer's id ends in a secret, so no other key can take it.
    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
    heartbeats(sock, options.heartbeat, options.heartbeat_timeout)
    secure(sock, keys)
    sock.setsockopt(zmq.SNDHWM, 100_000)
    sock.setsockopt(zmq.RCVHWM, 100_000)
    # libzmq's own guard against absurd frames; the core Nacks anything over max_payload.
    sock.setsockopt(zmq.MAXMSGSIZE, 4 * options.max_payload + (1 << 16))

    def lock(url: str, path: Path) -> None:
        if locks is not None:
            locks.append(_lock(url, path))

    return sock, _bind_all(sock, binds, lambda url: RouterInUseError(url, None), lock)


def renew_router(
    ctx: zmq.Context[Any],
    sock: zmq.Socket[bytes],
    monitor: zmq.Socket[bytes],
    endpoints: list[str],
    core: RouterCore,
    keys: ServerKeys | None,
) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
    """Close ``sock`` (every connection with it) and its monitor; a new ROUTER socket on
    the same endpoints (whose ipc locks we hold) and its monitor."""
    stats = core.stats
    connection_events(monitor, stats)
    # Every connection still open closes with the socket, unseen by its monitor.
    opened, closed = stats.get("connections_accepted", 0), stats.get("connections_closed", 0)
    stats["connections_closed"] = closed + max(0, opened - closed)
    sock.disable_monitor()
    monitor.close(0)
    sock.close(100)  # the last turn's output (the revoked key's Nack) gets a moment to leave
    sock = _once_free(lambda: bind_router(ctx, endpoints, core.options, keys, None)[0])
    return sock, sock.get_monitor_socket(MONITORED)


def _lock(url: str, path: Path) -> int:
    """Binding an ipc path would silently steal the socket file from a live router, so
    hold an flock beside it. A crashed router's lock is released by the kernel. The default
    endpoint's directory must be ours alone: in a shared /tmp another user could make it
    first and watch or replace the socket."""
    if url == default_router_url():
        private_dir(path.parent)
    else:  # a path the user named (in /tmp, say): what is missing is made 0700, not the rest
        make_dirs(path.parent)
    fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise RouterInUseError(url, int(pid) if pid.isdigit() else None) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def bind_pub(
    ctx: zmq.Context[Any], urls: list[str], keys: ServerKeys | None
) -> tuple[zmq.Socket[bytes], list[str]]:
    """The observers' feed (an XPUB whose subscriptions the router applies: see
    subscriptions.py), bound on ``urls``; and the endpoints it got."""
    pub = feed_socket(ctx)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, 1000)  # a stalled observer misses Updates, then resyncs
    secure(pub, keys)

    def in_use(url: str) -> ConfigError:  # a port some other program holds
        return ConfigError(f"cannot publish on {url}: address in use")

    return pub, _bind_all(pub, urls, in_use)


def _bind_all(
    sock: zmq.Socket[bytes],
    urls: list[str],
    in_use: Callable[[str], Exception],
    before_ipc: Callable[[str, Path], None] | None = None,
) -> list[str]:
    """Bind ``sock`` on every url (ipc socket files 0600); the endpoints it got. A taken
    address raises ``in_use(url)`` (bind_endpoint leaves only EADDRINUSE); ``before_ipc``
    runs for each ipc path first. On any failure ``sock`` is closed."""
    endpoints = []
    try:
        for url in urls:
            path = ipc_path(url)
            if path is not None and before_ipc is not None:
                before_ipc(url, path)
            try:
                bind_endpoint(sock, url)
            except zmq.ZMQError as exc:
                raise in_use(url) from exc
            if path is not None:
                path.chmod(0o600)
            endpoints.append(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    except BaseException:
        sock.close(0)
        raise
    return endpoints


def rebind_pub(
    ctx: zmq.Context[Any], endpoints: list[str], keys: ServerKeys | None
) -> tuple[zmq.Socket[bytes], list[str]]:
    """A new PUB socket on the endpoints of one just closed."""
    return _once_free(lambda: bind_pub(ctx, endpoints, keys))


def _once_free(bind: Callable[[], T]) -> T:
    """``bind()`` on the endpoints of a socket just closed, once libzmq's reaper has let
    its listeners go (a few ms; up to 2 s). The bind functions say "in use" as
    RouterInUseError (ROUTER) or ConfigError (PUB)."""
    deadline = time.monotonic() + 2.0
    while True:
        try:
            return bind()
        except (RouterInUseError, ConfigError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)  # the old listeners are still closing


def raise_fd_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit, and return it: every
    connected peer holds a descriptor of the router's, and a soft limit of 1024 (the usual
    default) would refuse the thousandth peer. Nothing changes where there is no such limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # a hard limit the kernel caps lower (macOS: OPEN_MAX)
            return soft
    return hard


def pin_to_cpus(cpus: list[int]) -> None:
    """Keep this thread, and every thread it starts from now on, on ``cpus``. Called before
    the router's socket exists, it pins libzmq's I/O thread with the loop: on a small box
    their hand-offs then stay on one core (measured: docs/benchmarks.md). Linux only."""
    wanted = set(cpus)
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:
        raise ValueError("pinning to CPUs needs Linux (sched_setaffinity)") from None
    if not wanted or not wanted <= allowed:
        have = ",".join(map(str, sorted(allowed)))
        raise ValueError(f"cannot pin to CPUs {sorted(wanted)}: this process may use {have}")
    os.sched_setaffinity(0, wanted)


def bind_endpoint(sock: zmq.Socket[bytes], url: str) -> None:
    """Bind, or say in one line why not: a ConfigError (the endpoint is the operator's
    choice), except EADDRINUSE, which the caller turns into who holds it."""
    try:
        sock.bind(url)
    except zmq.ZMQError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise
        reason = zmq.strerror(exc.errno) if exc.errno is not None else str(exc)
        raise ConfigError(f"cannot bind {url}: {reason}") from None


def pub_urls(binds: list[str]) -> list[str]:
    """One PUB endpoint beside each bind: ``ipc://PATH.pub``, a free port on a tcp bind's host,
    ``NAME.pub`` for inproc."""
    urls = []
    for url in binds:
        if url.startswith("tcp://"):
            host = url[len("tcp://") :].rsplit(":", 1)[0]
            urls.append(f"tcp://{host}:*")
        else:
            urls.append(f"{url}.pub")
    return urls


def check_exposure(
    binds: list[str], keys: ServerKeys | None, allow: Path | None, insecure: bool
) -> None:
    """Refuse to let other hosts in without CURVE, unless told ``insecure``."""
    if (keys is None) != (allow is None):
        raise ConfigError("CURVE needs both the router's secret key and an allow list")
    open_to = [url for url in binds if exposed(url)]
    if keys is None and open_to and not insecure:
        raise ConfigError(
            f"{open_to[0]} is reachable from other hosts: give the router a CURVE key"
            " and an allow list (--curve-secret FILE --allow DIR; see `zs keys`), or"
            " --insecure to let anyone who reaches it in"
        )


def exposed(url: str) -> bool:
    """Whether binding ``url`` lets other hosts reach it: a tcp address not on loopback
    (a wildcard, an interface, a name). ipc and inproc never are."""
    if not url.startswith("tcp://"):
        return False
    host = url[len("tcp://") :].rsplit(":", 1)[0]
    if ";" in host:  # tcp://SOURCE;HOST binds HOST
        host = host.split(";", 1)[1]
    return not (host in ("localhost", "[::1]", "::1") or host.startswith("127."))
