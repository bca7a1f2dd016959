"""Who gets in: the router's ZAP handler (ZeroMQ RFC 27), answered on the router's own thread.

libzmq asks a ZAP handler, over ``inproc://zeromq.zap.01`` in the socket's context, whether
each CURVE handshake may complete. The router's sockets enforce their ZAP domain
(``zmqswarm.keys.secure_server``), so with no handler bound, or a handler that stopped,
nobody new gets in: the router fails closed. The handler answers from the allow list, a
directory of public key files re-read when it changes or on SIGHUP; the User-Id it returns
is the key itself (Z85), which every frame then carries (``Frame.get("User-Id")``): a key
file replaced by another under the same name is a revocation of the old key.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import zmq
import zmq.auth
from zmq.utils import z85

from zmqswarm.errors import ConfigError
from zmqswarm.protocol import RouterCore
from zmqswarm.transport import readable

__all__ = ["ZAP_ENDPOINT", "AllowList", "Gatekeeper", "apply_allow_list", "zap_reply"]

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
_VERSION = b"1.0"
_RELOOK = 1.0  # seconds between looks at the allow list's directory
_LOG_EVERY = 10.0  # seconds between log lines about one address's refused handshakes
log = logging.getLogger("zmqswarm.router")


class AllowList:
    """The public keys in ``directory`` (one ``NAME.key`` each): Z85 key -> NAME. The
    directory must be ours and writable by nobody else: whoever may add a file to it may let
    any key in."""

    def __init__(self, directory: Path) -> None:
        if not directory.is_dir():
            raise ConfigError(f"allow list {directory} is not a directory of public keys")
        st = directory.stat()
        if st.st_uid != os.getuid() or st.st_mode & 0o022:
            raise ConfigError(
                f"allow list {directory} may be changed by others: it must be yours, and"
                f" not group- or world-writable (chmod 700 {directory})"
            )
        self.directory = directory
        self.keys: dict[str, str] = {}
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self.reload()

    def changed(self) -> bool:
        """Whether a key file was added, removed or rewritten since the last read."""
        return self._stamp != self._stat()

    def reload(self) -> set[str]:
        """Read the directory again; the keys (Z85) no longer in it. A file that does not
        parse is left out (and so refused), never guessed at."""
        self._stamp = self._stat()
        keys: dict[str, str] = {}
        for path in sorted(self.directory.glob("*.key")):
            try:
                public, _ = zmq.auth.load_certificate(path)
            except (OSError, ValueError):
                continue
            if len(public) == 40:
                keys[public.decode()] = path.name.removesuffix(".key")
        removed = set(self.keys) - set(keys)
        self.keys = keys
        return removed

    def _stat(self) -> tuple[tuple[str, int, int], ...]:
        """Each key file's name, mtime and size: a file rewritten in place counts too."""
        try:
            found = [e for e in os.scandir(self.directory) if e.name.endswith(".key")]
            return tuple(sorted((e.name, e.stat().st_mtime_ns, e.stat().st_size) for e in found))
        except OSError:
            return ()  # gone: every key is removed at the next reload


def zap_reply(request: list[bytes], domain: bytes, keys: dict[str, str]) -> list[bytes]:
    """The ZAP reply to ``request``: 200 with the key (Z85) as User-Id, or 400."""
    if len(request) < 6:
        request_id = request[1] if len(request) > 1 else b""
        return [_VERSION, request_id, b"400", b"malformed ZAP request", b"", b""]
    version, request_id, req_domain, _address, _identity, mechanism, *credentials = request
    if version != _VERSION:
        return [_VERSION, request_id, b"400", b"unknown ZAP version", b"", b""]
    if req_domain != domain or mechanism != b"CURVE" or len(credentials) != 1:
        return [_VERSION, request_id, b"400", b"CURVE only", b"", b""]
    key = z85.encode(credentials[0]).decode() if len(credentials[0]) == 32 else ""
    if key not in keys:
        return [_VERSION, request_id, b"400", b"unknown key", b"", b""]
    return [_VERSION, request_id, b"200", b"OK", key.encode(), b""]


def apply_allow_list(
    core: RouterCore, keys: dict[str, str], removed: set[str], now: float
) -> list[str]:
    """Trust ``keys`` (Z85 -> name) from now on; the ``removed`` ones are revoked (their
    sessions end). Returns the names of the revoked keys."""
    access = core.access
    assert access is not None
    names = [access.keys.get(key, key) for key in sorted(removed)]
    for key in sorted(removed):  # while the key still has its name: the refusal says it
        core.revoke(key, now)
    access.keys = dict(keys)
    return names


class Gatekeeper:
    """The ZAP endpoint, bound in the router's context before any CURVE socket binds."""

    def __init__(
        self, context: zmq.Context[Any], allow: AllowList, domain: str, stats: dict[str, int]
    ) -> None:
        self.allow = allow
        self.domain = domain.encode()
        self.stats = stats  # the router's counters: zap_allowed, zap_refused
        self.sock: zmq.Socket[bytes] = context.socket(zmq.REP)
        self.sock.setsockopt(zmq.LINGER, 0)
        try:
            self.sock.bind(ZAP_ENDPOINT)
        except zmq.ZMQError:
            self.sock.close(0)
            raise ConfigError("another ZAP handler is bound in this zmq context") from None
        self.asked = False  # to re-read the allow list at the next refresh (SIGHUP)
        self._logged: dict[str, float] = {}  # peer address -> when a refusal was logged
        self._next_look = 0.0

    def refresh(self, now: float) -> set[str] | None:
        """The keys removed, if the allow list changed since last read (looked at every
        ``_RELOOK`` s, or at once when ``asked``); None if it did not."""
        if not self.asked and now < self._next_look:
            return None
        self._next_look = now + _RELOOK
        if not self.asked and not self.allow.changed():
            return None
        self.asked = False
        return self.allow.reload()

    def answer(self) -> int:
        """Answer every request waiting; how many were answered. A question (one EVENTS
        query) before each receive is cheaper than the exception of an empty one."""
        sock, n = self.sock, 0
        while readable(sock):
            request = sock.recv_multipart(zmq.NOBLOCK)
            reply = zap_reply(request, self.domain, self.allow.keys)
            allowed = reply[2] == b"200"
            counter = "zap_allowed" if allowed else "zap_refused"
            self.stats[counter] = self.stats.get(counter, 0) + 1
            if not allowed:
                self._log_refusal(request, reply[3].decode())
            sock.send_multipart(reply)
            n += 1
        return n

    def _log_refusal(self, request: list[bytes], why: str) -> None:
        """One line per peer address per ``_LOG_EVERY`` s: who knocked, with which key."""
        address = request[3].decode("utf-8", "replace") if len(request) > 3 else "?"
        now = time.monotonic()
        if now - self._logged.get(address, -_LOG_EVERY) < _LOG_EVERY:
            return
        if len(self._logged) > 10_000:
            self._logged.clear()
        self._logged[address] = now
        key = request[6] if len(request) > 6 else b""
        shown = z85.encode(key).decode()[:12] + "…" if len(key) == 32 else "none"
        log.warning(
            "refused a handshake from %s (key %s): %s (further ones from it for %g s only counted)",
            address or "a local peer",
            shown,
            why,
            _LOG_EVERY,
        )

    def close(self) -> None:
        self.sock.close(0)
