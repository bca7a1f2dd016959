"""Sessions: who is connected, under which name, and when that ends.

Rule 1: every decision about a session lives here: welcome or refuse a Hello, who holds a
name, when a session ends and what its ending does. Rule 2: no sockets and no clock; whether
a peer's connection is still up is asked of the driver (``reachable``), like the time.

A session begins with a Welcome and ends exactly once, for one of the reasons in ``ENDINGS``.
It never ends because its peer was quiet: liveness is the connection's (ZMTP heartbeats, run
by libzmq's own thread at both ends), and the driver reports a dead one (``gone``). Whatever
the reason, the session's unacked deliveries go back to the front of its mailbox.
"""

from __future__ import annotations

from collections.abc import Callable

from zmqswarm.errors import LocalProtocolError

from .accepting import Acceptor
from .access import Access, name_of
from .codec import MAX_EPOCH, NAME_RULE, encode, valid_name
from .delivering import Delivery
from .effects import Effects
from .frames import PROTOCOL_VERSION, Code, Hello, Welcome
from .options import RouterOptions
from .router_state import Registry, Session
from .send_window import INF

__all__ = ["ENDINGS", "Sessions"]

ENDINGS: dict[str, str] = {
    "bye": "the peer said Bye",
    "gone": "its connection is gone (a send to it failed with EHOSTUNREACH)",
    "resumed": "the same peer said Hello again (a reconnect): a new session replaces it",
    "replaced": "a newcomer took the name of a holder whose connection was gone",
    "taken_over": "a newcomer took the name from a live holder (Hello with takeover): the "
    "holder hears TAKEN_OVER and the mailbox waits out the holder's lease",
    "revoked": "the CURVE key it connected with was revoked: the peer hears REVOKED",
}
"""Why a session can end: the only way out of a session, each taken once."""


class Sessions:
    def __init__(
        self,
        effects: Effects,
        options: RouterOptions,
        registry: Registry,
        delivery: Delivery,
        acceptor: Acceptor,
        *,
        epoch: int,
        reachable: Callable[[bytes], bool],
        access: Access | None = None,
    ) -> None:
        self.fx = effects
        self.options = options
        self.registry = registry
        self.delivery = delivery
        self.acceptor = acceptor
        self.epoch = epoch
        self.reachable = reachable
        self.access = access
        self.opened = 0  # sessions ever welcomed: the next one's number
        self._unwelcome: dict[bytes, float] = {}  # NOT_WELCOMED rate limit

    def get(self, identity: bytes) -> Session | None:
        return self.registry.sessions.get(identity)

    def hello(self, identity: bytes, hello: Hello, now: float) -> None:
        if hello.version != PROTOCOL_VERSION:
            reason = f"protocol version {hello.version} not supported (want {PROTOCOL_VERSION})"
            self.fx.nack(identity, 0, Code.BAD_VERSION, reason)
            return
        if not 1 <= hello.epoch <= MAX_EPOCH:
            reason = f"Hello.epoch {hello.epoch} is outside 1..2^53-1 ({MAX_EPOCH})"
            self.fx.stats["bad_frames"] += 1
            self.fx.nack(identity, 0, Code.BAD_FRAME, reason)
            self.fx.log("bad_frame", f"refused a Hello from {identity!r}: {reason}", now)
            return
        if not valid_name(hello.name):
            reason = f"invalid peer name {hello.name!r}: {NAME_RULE}"
            self.fx.nack(identity, 0, Code.INVALID_NAME, reason)
            return
        if self.access is not None and name_of(identity) != hello.name:
            # The key was checked against the routing id's name: the session must be that one.
            reason = f"Hello for {hello.name!r} on routing id {identity!r}: they must agree"
            self.fx.nack(identity, 0, Code.NOT_ALLOWED, reason)
            self.fx.stats["refused_not_allowed"] = self.fx.stats.get("refused_not_allowed", 0) + 1
            return
        registry = self.registry
        holder = None if hello.send_only else registry.by_name.get(hello.name)
        if holder is not None and holder.identity != identity:
            alive = self.reachable(holder.identity)
            if alive and not hello.takeover:
                reason = f"{hello.name!r} is held by a live peer; connect with takeover to take it"
                self.fx.nack(identity, 0, Code.NAME_TAKEN, reason)
                self.fx.log("name_taken", f"refused a second {hello.name!r}", now)
                return
            self.end(holder, "taken_over" if alive else "replaced", now)
        old = registry.sessions.get(identity)
        if old is not None and old.name == hello.name and hello.attempt <= old.hello:
            return  # a stale copy of a Hello already answered
        resumed = old is not None and old.sid == hello.resume
        if old is not None:
            self.end(old, "resumed", now)  # what was out goes again, numbered anew
        self.opened += 1
        session = Session(
            identity,
            hello.name,
            hello.epoch,
            max(1, hello.window),
            now,
            self.opened,
            hello.attempt,
            send_only=hello.send_only,
            packed=hello.packed,
        )
        registry.sessions[identity] = session
        registry.by_stream[hello.name, hello.epoch] = session
        if not hello.send_only:
            registry.by_name[hello.name] = session
        acked = self.acceptor.watermark(hello.name, hello.epoch)
        if acked is not None:
            self.fx.stats["resumed"] += 1  # it lost us (or we it) and resumes its numbering
        o = self.options
        welcome = Welcome(
            PROTOCOL_VERSION, self.epoch, session.sid, acked or 0, int(o.heartbeat * 1000),
            o.max_payload, hello.attempt, 0, resumed, int(o.heartbeat_timeout * 1000), True,
        )  # fmt: skip
        stream = self.acceptor.streams.get((hello.name, hello.epoch))
        if stream is not None and stream.batch > self.fx.durable_upto:
            self.fx.send_durable(identity, [encode(welcome)])  # ``acked`` is a promise too
        else:
            self.fx.send(identity, [encode(welcome)])
        self.delivery.session_started(session)

    def end(self, session: Session, why: str, now: float) -> None:
        """End ``session`` for reason ``why`` (one of ``ENDINGS``)."""
        if why not in ENDINGS:
            raise LocalProtocolError(f"no such ending: {why!r}")
        registry = self.registry
        if registry.sessions.get(session.identity) is not session:
            raise LocalProtocolError(f"session {session.sid} ended twice ({why})")
        del registry.sessions[session.identity]
        self.acceptor.forget(session.identity)
        if self.access is not None and why != "resumed":
            self.access.forget(session.identity)
        if registry.by_stream.get((session.name, session.epoch)) is session:
            del registry.by_stream[session.name, session.epoch]
        if why == "gone":
            self.fx.stats["disconnected"] += 1
        if session.send_only:
            return
        self.delivery.session_ended(session)
        if registry.by_name.get(session.name) is session:
            del registry.by_name[session.name]
        if why == "taken_over":
            self.fx.nack(session.identity, 0, Code.TAKEN_OVER, "another peer took this name over")
            # The old holder may hand out what it took until its lease runs out: wait longer.
            self.delivery.fence(session.name, now + self.options.heartbeat_timeout)

    def gone(self, identity: bytes, now: float) -> None:
        """The driver found ``identity``'s connection gone. Said twice, it changes nothing."""
        session = self.registry.sessions.get(identity)
        if session is not None:
            self.end(session, "gone", now)

    def unwelcomed(self, identity: bytes, now: float) -> None:
        """A frame from no session (after a router restart, every queued frame of a peer):
        say so, at most once a second per peer."""
        if now - self._unwelcome.get(identity, -INF) >= 1.0:
            self._unwelcome[identity] = now
            self.fx.nack(identity, 0, Code.NOT_WELCOMED, "say Hello first")
        if len(self._unwelcome) > 10_000:
            self._unwelcome.clear()

    def probe_targets(self) -> list[bytes]:
        """Whom to probe after the driver saw a connection drop: every session, since the
        drop names no peer. A probe costs the router a send and a live peer a wake-up."""
        return list(self.registry.sessions)
