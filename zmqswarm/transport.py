"""Endpoints, epochs, clocks and socket settings shared by the router and both clients."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

import zmq

from zmqswarm.errors import ConfigError
from zmqswarm.protocol.codec import MAX_BATCH, MAX_EPOCH
from zmqswarm.protocol.handshakes import CONNECTED, DOWN, UP

if TYPE_CHECKING:  # pathlib costs ~10 ms to import: `zs send` never needs it
    from pathlib import Path

    from zmqswarm.keys import ClientKeys
    from zmqswarm.protocol import ClientOptions

__all__ = [
    "clock",
    "close_peer_socket",
    "default_router_url",
    "drain",
    "heartbeats",
    "id_secret",
    "LINK_EVENTS",
    "link_events",
    "open_peer_socket",
    "peer_keys",
    "recv_parts",
    "recv_routed",
    "recv_routed_frame",
    "ipc_path",
    "new_epoch",
    "readable",
    "resolve_router_url",
    "routing_id",
    "send_or_drop",
    "send_parts",
    "send_routed",
]

ENV_ROUTER = "ZS_ROUTER"


def default_router_url() -> str:
    """The built-in endpoint: an ipc socket in a private per-user directory."""
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("TMPDIR") or "/tmp"
    return f"ipc://{base}/zmqswarm-{os.getuid()}/router"


def resolve_router_url(explicit: str | None = None, configured: str | None = None) -> str:
    """An explicit URL, else ``$ZS_ROUTER``, else the config's, else the built-in default."""
    return explicit or os.environ.get(ENV_ROUTER) or configured or default_router_url()


def ipc_path(url: str) -> Path | None:
    from pathlib import Path

    return Path(url[len("ipc://") :]) if url.startswith("ipc://") else None


def new_epoch() -> int:
    """A fresh random incarnation number in 1..MAX_EPOCH (53 bits, so that a JavaScript peer
    reads it exactly): unique per process start, never reused."""
    return (int.from_bytes(os.urandom(7), "little") & MAX_EPOCH) | 1


def id_secret(key: bytes, name: str, epoch: int) -> str:
    """16 hex digits that end a CURVE peer's routing id: a hash of ``NAME/EPOCH`` keyed with
    the peer's CURVE secret key. Nobody without that key can make it; a process that resumes
    an epoch from its spool makes the same one, so that its connection takes the id over
    from its predecessor's (ROUTER_HANDOVER) instead of finding the name held."""
    import hashlib

    return hashlib.blake2b(f"{name}/{epoch:x}".encode(), key=key, digest_size=8).hexdigest()


def routing_id(name: str, epoch: int, secret: str = "") -> bytes:
    """``NAME/EPOCH``, the epoch in lowercase hex without padding; with CURVE,
    ``NAME/EPOCH.SECRET``. One per process: libzmq reconnects with it, and the router
    (ROUTER_HANDOVER) gives it to the newest connection; the secret keeps any other key from
    presenting, and so taking over, a live peer's id."""
    return f"{name}/{epoch:x}.{secret}".encode() if secret else f"{name}/{epoch:x}".encode()


_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def clock() -> float:
    """Seconds on a clock that keeps counting while the process is stopped or the machine
    sleeps (CLOCK_BOOTTIME on Linux; CLOCK_MONOTONIC stops during a suspend): a client's
    lease must not look fresh after a laptop lid was closed."""
    if _BOOTTIME is None:
        return time.monotonic()
    return time.clock_gettime(_BOOTTIME)


def heartbeats(sock: zmq.Socket[Any], interval: float, timeout: float) -> None:
    """ZMTP heartbeats, run by libzmq's I/O thread (C, no GIL): a PING every ``interval``;
    a connection that carries nothing for ``timeout`` is closed (here, and, through the TTL,
    at the other end), and a connecting socket then reconnects."""
    sock.setsockopt(zmq.HEARTBEAT_IVL, int(interval * 1000))
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(timeout * 1000))
    sock.setsockopt(zmq.HEARTBEAT_TTL, int(timeout * 1000))


LINK_EVENTS = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
)
_REFUSALS: dict[int, str] = {
    zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: "the router and we disagree on security"
    " (one uses CURVE, the other not): give both our key and the router's, or neither",
    zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: "the CURVE handshake failed: is --router-key"
    " the router's public key?",
}


def peer_keys(keys: ClientKeys | None) -> ClientKeys | None:
    """``keys``, else the ones ``$ZS_CURVE_SECRET`` and ``$ZS_ROUTER_KEY`` name, else None.
    zmqswarm.keys is imported only when CURVE is used (``zs send`` starts without it)."""
    if keys is None and (os.environ.get("ZS_CURVE_SECRET") or os.environ.get("ZS_ROUTER_KEY")):
        from zmqswarm.keys import client_keys

        return client_keys()
    return keys


def peer_limits(sock: zmq.Socket[Any], max_payload: int) -> None:
    """No frame from the router may be absurd: libzmq drops the connection before
    allocating one over this (its default is no limit)."""
    sock.setsockopt(zmq.MAXMSGSIZE, max(4 * max_payload + (1 << 16), 64 << 20))


def open_peer_socket(
    ctx: zmq.Context[Any],
    url: str,
    identity: bytes,
    options: ClientOptions,
    keys: ClientKeys | None = None,
) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
    """A client's DEALER, connected to ``url`` (as a CURVE client if ``keys``), and the
    monitor that says when its connection drops, comes back or is refused (``link_events``).
    A malformed URL is a ConfigError, and leaves no socket behind."""
    sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
    tune(sock)
    sock.setsockopt(zmq.ROUTING_ID, identity)
    peer_limits(sock, options.max_payload)
    if keys is not None:
        from zmqswarm.keys import secure_client

        secure_client(sock, keys)
    heartbeats(sock, options.heartbeat, options.heartbeat_timeout)
    # A TCP connect the network swallowed is given up and tried afresh, not left to the
    # kernel's SYN backoff (which waits up to minutes once a partition heals).
    sock.setsockopt(zmq.CONNECT_TIMEOUT, max(1000, int(options.heartbeat_timeout * 1000)))
    monitor: zmq.Socket[bytes] = sock.get_monitor_socket(LINK_EVENTS)
    try:
        sock.connect(url)
    except zmq.ZMQError as exc:
        close_peer_socket(sock, monitor)
        raise ConfigError(f"cannot connect to {url!r}: {exc.strerror}") from None
    return sock, monitor


def close_peer_socket(sock: zmq.Socket[Any], monitor: zmq.Socket[Any]) -> None:
    """Close both, giving what was just sent (a Bye) a moment to leave."""
    sock.disable_monitor()
    monitor.close(0)
    sock.close(linger=200)


def link_events(monitor: zmq.Socket[Any]) -> Iterator[str]:
    """What the connection did since last asked, oldest first: CONNECTED (before the
    handshake), UP (handshake done), DOWN (dropped), or why the router will never let us in
    (a refused key, a security mismatch)."""
    while readable(monitor):
        head = monitor.recv_multipart(zmq.NOBLOCK)[0]
        event, value = int.from_bytes(head[:2], "little"), int.from_bytes(head[2:6], "little")
        if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            yield UP
        elif event == zmq.EVENT_CONNECTED:
            yield CONNECTED
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            yield "the router refused our CURVE key: it is not in the router's allow list"
        elif event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
            if value in _REFUSALS:
                yield _REFUSALS[value]
        else:
            yield DOWN


def tune(sock: zmq.Socket[Any]) -> None:
    """Settings every zmqswarm socket gets: no linger past close, no silent HWM drops."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)  # the reliability window bounds memory, not libzmq
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, 50)
    # A partition that heals is crossed within CONNECT_TIMEOUT (an attempt it swallowed)
    # plus this backoff: about 1.5 s, inside the 2 s a healed network is promised.
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 500)


def recv_parts(sock: zmq.Socket[Any], flags: int = 0) -> list[bytes]:
    """``recv_multipart`` for less: each part's more-flag is read off its Frame instead of a
    ``getsockopt(RCVMORE)`` per part, a call into libzmq that costs more than the flag.

    At most ``MAX_PARTS`` are kept, one more than any frame of the protocol has: the rest of
    a longer one is read and dropped, and the core refuses what is kept (its part count is
    wrong whatever its kind). libzmq limits each part's size, not their number."""
    recv = sock.recv
    frame = recv(flags, copy=False)
    parts = [frame.bytes]
    while frame.more:
        frame = recv(0, copy=False)
        if len(parts) < MAX_PARTS:
            parts.append(frame.bytes)
    return parts


def recv_routed(sock: zmq.Socket[Any], flags: int = 0) -> tuple[bytes, list[bytes]]:
    """One message from a ROUTER socket: (identity, parts). ROUTER always puts the identity
    first and at least one part after it, so the identity is read as plain bytes, without
    the Frame that would only say what is known."""
    identity = sock.recv(flags)
    return identity, recv_parts(sock)


def recv_routed_frame(sock: zmq.Socket[Any], flags: int = 0) -> tuple[zmq.Frame, list[bytes]]:
    """``recv_routed`` for a CURVE socket: the identity part as a Frame, which carries the
    User-Id of the key its connection authenticated with."""
    return sock.recv(flags, copy=False), recv_parts(sock)


def readable(sock: zmq.Socket[Any]) -> bool:
    """Whether a message waits. Asking makes libzmq process its pending commands (a system
    call), which re-arms the edge-triggered descriptor: ask once a turn, not per message."""
    return bool(cast(int, _get(sock, _EVENTS)) & _POLLIN)


def drain(sock: zmq.Socket[Any], limit: int) -> Iterator[list[bytes]]:
    """Up to ``limit`` waiting multipart messages, without blocking. The first few are asked
    for (``readable``, 1.4 us here), the rest read until zmq.Again (3.5 us, once): a turn
    mostly finds zero or one message at a steady rate, and then builds no exception, while a
    backlog pays one exception, not one system call per message."""
    for taken in range(limit):
        if taken < ASK_FIRST:
            if not readable(sock):
                return
            yield recv_parts(sock, _NOBLOCK)
            continue
        try:
            yield recv_parts(sock, _NOBLOCK)
        except zmq.Again:
            return


ASK_FIRST = 2  # messages a drain asks for before it reads until zmq.Again
MAX_PARTS = 2 + MAX_BATCH  # parts kept of a frame: a header and 1,024 payloads, and one more
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_MORE = int(zmq.SNDMORE)
_MORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
_NOBLOCK = int(zmq.NOBLOCK)


def send_parts(sock: zmq.Socket[Any], parts: list[bytes], noblock: bool = False) -> None:
    """``send_multipart`` without its per-frame IntFlag arithmetic, which shows in 1024-part
    batches. A multipart message is queued atomically once its first part is, so only the
    first send can raise zmq.Again. Calls the compiled ``send`` beneath ``zmq.Socket.send``:
    the Python override above it only handles routing_id and group (draft sockets)."""
    more, last = (_MORE_NOBLOCK, _NOBLOCK) if noblock else (_MORE, 0)
    for part in parts[:-1]:
        _send(sock, part, more)
    _send(sock, parts[-1], last)


def send_or_drop(sock: zmq.Socket[Any], parts: list[bytes]) -> None:
    """A peer's frame onto its DEALER, never blocking. With no high-water mark that fails
    only while the socket has no connection at all (libzmq drops it after a refused
    handshake, until it reconnects): the frame is then lost, as on a dropped connection,
    and the protocol's timers send again what must arrive."""
    try:
        send_parts(sock, parts, noblock=True)
    except zmq.Again:
        pass


def send_routed(sock: zmq.Socket[Any], identity: bytes, parts: list[bytes]) -> None:
    """One message out of a ROUTER socket to ``identity``, never blocking: zmq.Again (its
    pipe is full) or EHOSTUNREACH (ROUTER_MANDATORY: no such peer) come from the first send
    or never."""
    _send(sock, identity, _MORE_NOBLOCK)
    send_parts(sock, parts)


_send = zmq.backend.Socket.send
_get = zmq.backend.Socket.get  # getsockopt without the sugar's option-to-enum conversion
