"""RouterCore: the router's decisions, minus the I/O. ``zmqswarm.router`` drives it.

Feed it frames (``handle``) and what the driver learned (``peer_gone``, ``undeliver``), tell
it the time (``tick``), and take what it decided: frames to send (``take_output``), lines to
log (``take_logs``), Updates for observers (``take_updates``). It never sends, logs or reads a
clock itself.

It only dispatches. The decisions live in three modules, by what they decide:

    sessions     who is connected under which name; Hello, Bye, gone, takeover
    accepting    whether a message enters a mailbox (dedup, per-pair order, room); receipts
    delivering   the mailboxes: delivery under credit, acks, holds, dead letters, notices

With a journal (``journaled=True``, and ``wall_offset`` to turn its clock into the wall-clock
time the journal keeps) it also hands its driver, each turn, a batch of what
changed (``take_journal``), and holds back what promises it until the driver says the batch is
on disk (``durable``); see journaling.py. ``restore`` puts a journal's contents back.

The router itself has two states::

    SERVING ──begin_drain()──► DRAINING   (every new message refused SHUTTING_DOWN; what is
                                            stored still goes to connected recipients)
"""

from __future__ import annotations

from collections.abc import Callable

from zmqswarm.errors import LocalProtocolError

from .accepting import Acceptor
from .access import Access
from .codec import DecodeFailure, decode, encode
from .dead_letters import DeadLetter, DeadLetterStore
from .delivering import Delivery
from .effects import Effects
from .frames import Ack, Bye, Code, Heartbeat, Hello, Hold, PeerState, Publish, Send
from .inbox import MAX_NOTE
from .journaling import Batch, Put, Restored
from .options import RouterOptions
from .packing import payloads_of
from .query_frames import ListDead, ListPeers, Observe, ObserveTopics, PeerItem, PeerList, Update
from .router_state import Output, Registry, Session, Stream
from .sessions import Sessions
from .state_feed import LatencyWindow, StatePublisher
from .topic_feed import TopicCache

__all__ = ["TRANSITIONS", "DeadLetter", "Output", "RouterCore", "RouterOptions"]

SERVING, DRAINING = "serving", "draining"

TRANSITIONS: dict[str, dict[str, str]] = {"begin_drain": {SERVING: DRAINING}}
"""event -> {state it may happen in: the state it leads to}."""

_SWEEP = 0.25  # seconds between timer sweeps (ttls, fences, stale streams)


class RouterCore:
    """``reachable(identity)`` is injected like the clock: the driver answers whether a peer's
    connection is still up (a name held by a crashed peer is then free at once)."""

    def __init__(
        self,
        *,
        epoch: int,
        options: RouterOptions | None = None,
        reachable: Callable[[bytes], bool] = lambda identity: True,
        started: float = 0.0,
        journaled: bool = False,
        wall_offset: float = 0.0,
        access: Access | None = None,
    ) -> None:
        self.epoch = epoch
        self.access = access  # on a CURVE socket: which key may use which name
        self.options = opts = options or RouterOptions()
        self.state = SERVING
        self.fx = Effects(journaled, wall_offset)
        self.registry = Registry()
        self.delivery = Delivery(self.fx, opts, self.registry)
        self.acceptor = Acceptor(self.fx, opts, self.delivery)
        self.sessions = Sessions(
            self.fx, opts, self.registry, self.delivery, self.acceptor,
            epoch=epoch, reachable=reachable, access=access,
        )  # fmt: skip
        self.publisher = StatePublisher(
            epoch, started, opts.publish_interval, opts.publish_heartbeat
        )
        self.topics = TopicCache(
            epoch, started, interval=opts.topic_interval, heartbeat=opts.publish_heartbeat,
            max_value=opts.max_topic_value, max_topics=opts.max_topics,
            max_bytes=opts.max_topic_bytes, stats=self.fx.stats,
        )  # fmt: skip
        self.publish_endpoints: list[str] = []  # where the driver publishes Updates
        self._updates: list[Update] = []  # made by Snapshots, not yet taken by the driver
        self._next_sweep = 0.0

    # -- what the driver reads ------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        """Counters since the router started (what observers see)."""
        return self.fx.stats

    @property
    def dead(self) -> DeadLetterStore:
        return self.delivery.dead

    @property
    def latency(self) -> LatencyWindow:
        return self.delivery.latency

    def peers(self, now: float) -> list[PeerItem]:
        return self.delivery.peers(now)

    # -- input ----------------------------------------------------------------------------

    def admit(self, identity: bytes, key: str, parts: list[bytes], now: float) -> int:
        """``handle`` for a CURVE socket: ``key`` is the frame's User-Id, the key (Z85) its
        connection authenticated with. A frame the key may not send is refused, counted and
        never handled."""
        assert self.access is not None
        refusal = self.access.admit(identity, key)
        if refusal is None:
            return self.handle(identity, parts, now)
        stats = self.fx.stats
        stats[f"refused_{refusal.reason}"] = stats.get(f"refused_{refusal.reason}", 0) + 1
        code = Code.REVOKED if refusal.reason == "revoked" else Code.NOT_ALLOWED
        self.fx.nack(identity, 0, code, refusal.detail)
        self.fx.log(f"refused_{refusal.reason}:{key}", f"refused a frame: {refusal.detail}", now)
        return 1

    def revoke(self, key: str, now: float) -> int:
        """Stop trusting ``key``: every session it holds ends at once (its mail waits for
        the name's next rightful holder), and its later frames are refused. Returns how many
        sessions ended."""
        assert self.access is not None
        name = self.access.keys.get(key, key[:8] + "…")
        ended = 0
        for identity in self.access.revoke(key):
            session = self.sessions.get(identity)
            if session is not None:
                self.sessions.end(session, "revoked", now)
                ended += 1
            self.fx.nack(identity, 0, Code.REVOKED, f"key {name!r} was revoked")
        self.fx.log(f"revoked:{key}", f"key {name!r} revoked: {ended} sessions ended", now)
        return ended

    def handle(self, identity: bytes, parts: list[bytes], now: float) -> int:
        """One multipart message from a peer (the identity part already split off). Returns
        the messages it carried (at least 1): the driver's measure of a turn's work, as a
        packed Send carries up to 1024 in two parts."""
        try:
            frame = decode(parts[0])
        except DecodeFailure as exc:
            self._bad(identity, exc.code, exc.detail, now)
            return 1
        session = self.sessions.get(identity)
        nparts = len(parts)
        if type(frame) is Send:  # the hot path: no match, no second lookup
            payloads = payloads_of(frame.sizes, len(frame.items), parts)
            if payloads is None or not frame.items:
                self._bad(identity, Code.BAD_FRAME, "Send parts do not fit its items", now)
            elif session is None:
                self.sessions.unwelcomed(identity, now)
            else:
                session.last_seen = now
                self.acceptor.accept(session, frame, payloads, now)
            return len(frame.items) or 1
        if type(frame) is Publish:
            if nparts != len(frame.items) + 1 or not frame.items:
                self._bad(identity, Code.BAD_FRAME, "Publish part count != items + 1", now)
            elif session is None:
                self.sessions.unwelcomed(identity, now)
            else:
                session.last_seen = now
                self._publish(session.name, frame, parts, now)
            return len(frame.items) or 1
        if nparts != 1:
            self._bad(identity, Code.BAD_FRAME, f"{type(frame).__name__} with {nparts} parts", now)
            return 1
        if type(frame) is Hello:
            self.sessions.hello(identity, frame, now)
            return 1
        if session is None:
            self.sessions.unwelcomed(identity, now)
            return 1
        session.last_seen = now
        fx = self.fx
        match frame:
            case Ack(session=sid, upto=upto, notes=notes):
                if sid == session.sid and upto <= session.dseq:
                    if not session.send_only:
                        self.delivery.ack(session, upto, dict(notes) if notes else None, now)
                elif sid >= session.sid:  # a later session's is no more this peer's than 0 is
                    self._bad_ack(session, sid, upto, now)
            case Heartbeat(nonce=nonce):
                if nonce:  # a ping: the session is alive, say so (a probe's echo is ignored)
                    fx.send(identity, [encode(Heartbeat(nonce))])
            case ListDead(after=after, limit=limit, drop_upto=drop_upto):
                answer, payloads = self.dead.answer(after, limit, drop_upto, now)
                fx.send(identity, [encode(answer), *payloads])
                if drop_upto and fx.journal is not None:
                    fx.journal.dead_upto = max(fx.journal.dead_upto, drop_upto)
            case ListPeers():
                fx.send(identity, [encode(PeerList(self.peers(now)))])
            case Observe():
                snap, catch_up = self.publisher.snapshot(
                    self.peers(now), dict(self.stats), self.publish_endpoints, now, self.latency
                )
                if catch_up is not None:
                    self._updates.append(catch_up)
                fx.send(identity, [encode(snap)])
            case ObserveTopics(prefix=prefix, after=after):
                page = self.topics.snapshot(prefix, after, self.publish_endpoints, now)
                fx.send(identity, page)
            case Hold(session=sid, dseq=dseq, reason=reason):
                if sid == session.sid and not session.send_only:
                    self.delivery.hold(session, dseq, reason[:MAX_NOTE])
            case PeerState(state=state):
                if not session.send_only:
                    session.state = state[:MAX_NOTE]
            case Bye():
                self.sessions.end(session, "bye", now)
            case _:
                kind = type(frame).__name__
                self._bad(identity, Code.BAD_FRAME, f"{kind} is not accepted from peers", now)
        return 1

    def _publish(self, publisher: str, frame: Publish, parts: list[bytes], now: float) -> None:
        put = self.topics.put
        for item, payload in zip(frame.items, parts[1:], strict=True):
            why = put(item.topic, payload, publisher, item.ttl_ms, now)
            if why:
                self.fx.log("publish_refused", f"{publisher} published: {why}", now)

    def peer_gone(self, identity: bytes, now: float) -> None:
        """The driver found the peer's connection gone (a send failed with EHOSTUNREACH): end
        its session now. Its unacked mail goes back to the front of its mailbox, for whoever
        holds the name next."""
        self.sessions.gone(identity, now)

    def undeliver(self, identity: bytes, first_dseq: int) -> None:
        """The driver could not send the Deliver starting at ``first_dseq`` (peer gone or its
        queue full): put those messages back at the front of the mailbox, uncounted."""
        session = self.sessions.get(identity)
        if session is not None:
            self.delivery.undeliver(session, first_dseq)

    def probe_targets(self) -> list[bytes]:
        return self.sessions.probe_targets()

    # -- output ---------------------------------------------------------------------------

    def take_deliveries(self, now: float) -> list[Output]:
        """What this turn's input made so far to deliver, and any answers it made (Nacks):
        sent at once, before the turn reads on. Receipts wait for ``take_output``."""
        self.delivery.pump_touched(now)
        return self.fx.take_output()

    def take_output(self, now: float) -> list[Output]:
        """Everything to send after a batch of input: deliveries first (a message on its
        way waits for nothing), then receipts and notices."""
        self.delivery.pump_touched(now)
        self.acceptor.take_receipts(now)
        return self.fx.take_output()

    def take_logs(self) -> list[str]:
        """Lines to log (at WARNING), each kind at most once per 10 s."""
        return self.fx.take_logs()

    def take_updates(self, now: float) -> tuple[Update, ...]:
        """The Updates to publish for observers, in order (see state_feed.py): those a
        Snapshot made this turn, then the periodic one when it is due. Asked every turn: two
        comparisons when there is nothing to publish."""
        if now >= self.publisher.next_at:
            update = self.publisher.update(self.peers(now), self.stats, now, self.latency)
            if update is not None:
                self._updates.append(update)
        if not self._updates:
            return ()
        updates = tuple(self._updates)
        self._updates.clear()
        return updates

    def take_topics(self, now: float) -> list[list[bytes]]:
        """The topic messages to publish on PUB, in order (see topic_feed.py): each changed
        topic's value, then the tick, when one is due. Asked every turn: cheap when idle."""
        return self.topics.take(now)

    # -- the journal ----------------------------------------------------------------------

    def take_journal(self) -> Batch | None:
        """What changed since the last batch, for the journal (None: nothing to write, or no
        journal). Taken after ``take_output``: receipts made this turn wait for this batch."""
        fx = self.fx
        journal = fx.journal
        if journal is None or not (journal.pending() or fx.waiting_for(journal.number)):
            return None
        return journal.take(self.acceptor.streams)

    def durable(self, number: int, now: float) -> None:
        """The journal has batches up to ``number`` on disk: what waited for them may go out,
        and new mail is taken again if a failing write had stopped it."""
        self.fx.durable(number)
        if self.acceptor.store_failing:
            self.acceptor.store_failing = ""
            self.fx.log("store_ok", "the journal writes again: accepting mail", now)

    def journal_failing(self, reason: str, now: float) -> None:
        """The journal cannot write (disk full, I/O error): nothing more is accepted (Nack
        STORE_FULL, retriable) until it can; delivery of what is stored goes on."""
        if not self.acceptor.store_failing:
            self.stats["store_failures"] += 1
        self.acceptor.store_failing = reason
        self.fx.log("store_full", f"the journal cannot write: {reason}; refusing new mail", now)

    def restore(self, restored: Restored, now: float) -> None:
        """Put back what a journal kept: mailboxes, sender watermarks, dead letters. Called
        once, before the first frame."""
        journal = self.fx.journal
        if journal is None:
            raise LocalProtocolError("restore() needs a journaled core")
        self.delivery.restore(restored.puts, restored.spills)
        journal.next_rid = restored.next_rid
        for row in restored.streams:
            stream = Stream(row.wm, set(row.above), min(row.last_seen, now))
            self.acceptor.streams[row.name, row.epoch] = stream
        for d in restored.dead:
            self.dead.restore(
                DeadLetter(d.id, d.to, d.sender, d.epoch, d.seq, d.payload, Code(d.code), d.at)
            )

    def kept(self) -> dict[str, int]:
        """Messages held per name (what a journal keeps on disk after a stop)."""
        return {
            name: mb.waiting for name, mb in sorted(self.delivery.mailboxes.items()) if mb.waiting
        }

    def paged_in(self, name: str, puts: list[Put], now: float) -> None:
        """The journal read back a page of ``name``'s mail that waited on disk only."""
        self.delivery.paged_in(name, puts, now)

    # -- timers ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Timers: ttls of waiting mail, fenced mailboxes coming free, forgotten senders.
        Sessions do not time out: see sessions.ENDINGS."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP
        self.delivery.expire(now)
        self.acceptor.expire_streams(now)

    def next_deadline(self) -> float:
        return min(self._next_sweep, self.acceptor.next_deadline())

    # -- leaving --------------------------------------------------------------------------

    def begin_drain(self) -> None:
        """Stop accepting (Nack SHUTTING_DOWN); keep delivering what is held."""
        self._transition("begin_drain")
        self.acceptor.draining = True

    def drained(self) -> bool:
        """Nothing left that a connected recipient could still take."""
        return self.delivery.drained()

    # -- internals ------------------------------------------------------------------------

    def _transition(self, event: str) -> None:
        try:
            self.state = TRANSITIONS[event][self.state]
        except KeyError:
            raise LocalProtocolError(f"{event!r} is not allowed in state {self.state!r}") from None

    def _bad_ack(self, session: Session, sid: int, upto: int, now: float) -> None:
        """An Ack of deliveries this session was never sent (beyond its last dseq, or of a
        session opened after it): ignored whole, counted, no Nack. An Ack of an earlier
        session of the same peer is not one: a reconnect can leave one behind."""
        self.stats["bad_acks"] += 1
        detail = f"Ack({sid}, {upto}) from session {session.sid}, last dseq {session.dseq}"
        self.fx.log("bad_ack", f"ignored an Ack of deliveries never sent: {detail}", now)

    def _bad(self, identity: bytes, code: Code, detail: str, now: float) -> None:
        self.stats["bad_frames"] += 1
        self.fx.nack(identity, 0, code, detail)
        self.fx.log("bad_frame", f"bad frame from {identity!r}: {code.name}: {detail}", now)
