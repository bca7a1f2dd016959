"""Whether the router will ever let us in, told from what a connection monitor reports.

A router that refuses our CURVE key says so (ZAP), and libzmq reports it; a router that wants
CURVE from a peer without keys, or whose key the peer has wrong, just closes each connection
before its handshake ends. Three such in a row, and no handshake between, is an answer too.
Sans-IO: the driver feeds it link events (``zmqswarm.transport.link_events``).
"""

from __future__ import annotations

__all__ = ["CONNECTED", "CUT_SHORT", "DOWN", "UP", "Handshakes"]

UP, DOWN, CONNECTED = "up", "down", "connected"
CUT_SHORT = 3  # connections in a row the router closes mid-handshake: it will not have us
_CUT_SHORT_REASON = (
    f"the router closed {CUT_SHORT} connections in a row before their handshake ended: it"
    " wants CURVE keys we do not have (--curve-secret, --router-key), or --router-key is not"
    " its public key"
)


class Handshakes:
    def __init__(self) -> None:
        self.refusal: str | None = None  # why the router will never let us in, once known
        self._shaking = False  # a connection is open and its handshake has not ended
        self._cut_short = 0

    def event(self, what: str) -> str | None:
        """Fold in one event: UP, DOWN, CONNECTED, or a refusal's reason. Returns the
        refusal once there is one."""
        if what == CONNECTED:
            self._shaking = True
        elif what == UP:
            self._shaking, self._cut_short = False, 0
        elif what == DOWN:
            if self._shaking:
                self._shaking = False
                self._cut_short += 1
                if self._cut_short >= CUT_SHORT:
                    self.refusal = _CUT_SHORT_REASON
        else:
            self.refusal = what
        return self.refusal
