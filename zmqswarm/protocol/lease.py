"""A client's lease on its session: how long it may hand mail over without the router's word.

The router may end a session, and give its name and unacked mail to another peer, once the
session's connection has been silent for the router's liveness timeout. A process stopped that
long (SIGSTOP, a suspended laptop, a debugger) cannot know it was: its lease ran out meanwhile,
since its clock (CLOCK_BOOTTIME) kept counting. The lease holds for half that timeout from the
last moment the router is known to have had the session alive: when a Hello was sent that a
Welcome answered, or a ping (``Heartbeat`` with a nonce) that the router echoed. It is renewed
ahead, once past half its span, so a steady stream never waits; after a silence the first
message waits for one round trip. Sans-IO: the clock is passed in.
"""

from __future__ import annotations

from .send_window import INF

__all__ = ["Lease"]


class Lease:
    def __init__(self, span: float, resend_after: float) -> None:
        self.span = span  # how long a confirmation lasts
        self.resend_after = resend_after  # a ping unanswered this long went with a connection
        self.until = -INF  # hand messages over only before this
        self.ping = 0  # nonce of the ping in flight (0: none)
        self.ping_at = 0.0
        self._pings = 0

    def holds(self, now: float) -> bool:
        return now < self.until

    def confirmed(self, sent_at: float, span: float | None = None) -> None:
        """The router answered something sent at ``sent_at``: the session was alive then.
        ``span``: a new span, from the router's own liveness timeout."""
        if span is not None:
            self.span = span
        self.until = sent_at + self.span
        self.ping = 0

    def lost(self) -> None:
        self.until = -INF
        self.ping = 0

    def wants_ping(self, now: float) -> bool:
        """Past half its span and no ping out: time to renew, ahead."""
        return not self.ping and self.until - now < self.span / 2

    def new_ping(self, now: float) -> int:
        """The nonce of a ping to send now."""
        self._pings += 1
        self.ping, self.ping_at = self._pings, now
        return self.ping

    def echoed(self, nonce: int) -> bool:
        """An echo came: renew if it answers the ping in flight."""
        if nonce and nonce == self.ping:
            self.confirmed(self.ping_at)
            return True
        return False

    def ping_due(self) -> float:
        """When the ping in flight is given up and sent again (INF: none in flight)."""
        return self.ping_at + self.resend_after if self.ping else INF
