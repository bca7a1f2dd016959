"""Revoking a key while the router runs (SIGHUP, or ``zs keys revoke --pid``): the allow list
is read again, the sessions of keys whose file is gone end, and both sockets are made anew,
since libzmq checks a key only at its handshake and cannot close one peer's connection."""

from __future__ import annotations

import logging
from typing import Any

import zmq

from zmqswarm.keys import ServerKeys
from zmqswarm.protocol import RouterCore

from .auth import Gatekeeper, apply_allow_list
from .endpoints import rebind_pub, renew_router
from .subscriptions import Subscriptions
from .sweeps import Sweeps

__all__ = ["Revocation"]

log = logging.getLogger("zmqswarm.router")


class Revocation:
    """What ``Router`` (loop.py) does when a key is revoked."""

    core: RouterCore
    gate: Gatekeeper | None
    curve: ServerKeys | None
    sock: zmq.Socket[bytes]
    monitor: zmq.Socket[bytes]
    pub: zmq.Socket[bytes]
    subscriptions: Subscriptions
    endpoints: list[str]
    _ctx: zmq.Context[Any]
    _sweeps: Sweeps
    _renew: bool  # the ROUTER socket is to be made anew: the loop's turn ends for that

    def reload(self) -> None:
        """Read the allow list again at the next turn (SIGHUP): a key whose file is gone is
        revoked, and its live sessions end."""
        if self.gate is not None:
            self.gate.asked = True

    def _revoke(self, removed_keys: set[str] | None, now: float) -> None:
        if removed_keys is None or self.gate is None:
            return
        removed = apply_allow_list(self.core, self.gate.allow.keys, removed_keys, now)
        if removed:
            # libzmq checks a key only at the handshake and cannot close one peer's
            # connection: both sockets are made anew, and every peer and observer must pass
            # the allow list again to reconnect.
            urls = list(self.core.publish_endpoints)
            self.pub.close(0)
            self.pub, self.core.publish_endpoints[:] = rebind_pub(self._ctx, urls, self.curve)
            self.subscriptions = Subscriptions(self.core.stats, self.core.options.max_topics)
            self._renew = True
            log.warning(
                "revoked %s: their sessions ended; every connection is closed, to be opened"
                " again through the allow list",
                ", ".join(sorted(removed)),
            )

    def _renew_router(self, now: float) -> None:
        """Close the ROUTER socket, and every connection with it, and bind a new one. The
        others reconnect (in about 50 ms) and resume their sessions; what was on its way
        goes again, as after any drop."""
        self._renew = False
        self.sock, self.monitor = renew_router(
            self._ctx, self.sock, self.monitor, self.endpoints, self.core, self.curve
        )
        self._sweeps.renewed(now)
