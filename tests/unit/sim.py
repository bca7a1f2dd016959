"""An in-memory network of ClientCores around one RouterCore, with a hand on every frame.

Links are lists of multipart messages; the test decides which frame moves next, which is
duplicated or overtaken, when a connection breaks, when the router restarts, when a peer is
stopped, replaced or taken over, and when time passes. No sockets, no threads, no real clock.

As in ZMTP, a frame is lost only with its connection: a break loses a link's frames from some
point on, the client's monitor reports the drop and the reconnection (``link_down``,
``link_up``), and the router may or may not have seen the old connection die (``peer_gone``)
before the peer is back under the same identity.

A name may have several incarnations over time (``Peer``): a takeover or a successor to a
stopped peer starts a new one, and the old one goes on receiving frames until it learns.
``Ledger`` records every send and every hand-over, and says what the contract allows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import msgspec

from zmqswarm.protocol import ClientCore, ClientOptions, RouterCore, RouterOptions
from zmqswarm.protocol.client_events import Accepted, Failed, Notified, Refused
from zmqswarm.protocol.inbox import Inbound
from zmqswarm.protocol.journaling import Batch
from zmqswarm.router.journal_db import connect, read, read_page, write

Parts = list[bytes]


@dataclass
class Peer:
    """One incarnation of a name: its core, how it acks, what it holds unacked."""

    name: str
    core: ClientCore
    manual: bool = False  # acks when the test says, in any order (auto_ack=False)
    slow: bool = False  # its application takes a message only when the test says
    held: list[Inbound] = field(default_factory=list)
    stopped: bool = False  # SIGSTOP: takes no frames, runs no timers
    gone: bool = False  # its connection is dead as the router sees it

    @property
    def identity(self) -> bytes:
        return f"{self.name}/{self.core.epoch}".encode()


@dataclass(frozen=True)
class Sent:
    sender: str
    epoch: int  # the sender incarnation's
    seq: int
    to: str
    index: int  # its place among this (sender incarnation, to) pair's messages
    notify: bool
    ttl: bool


class Ledger:
    def __init__(self) -> None:
        self.sent: dict[bytes, Sent] = {}
        self.handed: list[tuple[bytes, bytes, int]] = []  # (payload, by identity, attempt)
        self.accepted: set[tuple[str, int, int]] = set()  # (sender, epoch, seq)
        self.failed: set[tuple[str, int, int]] = set()
        self.may_lose: set[bytes] = set()  # receipted before a router restart, or abandoned
        self.restarted_before: set[bytes] = set()  # sent before a router restart
        self.notices: dict[bytes, list[str]] = defaultdict(list)
        self._pairs: dict[tuple[str, int, str], int] = defaultdict(int)
        self._by_key: dict[tuple[str, int, int], bytes] = {}

    def send(self, sender: Peer, to: str, now: float, *, notify: bool, ttl: bool) -> bytes:
        pair = (sender.name, sender.core.epoch, to)
        index = self._pairs[pair]
        self._pairs[pair] += 1
        payload = f"{sender.name}/{sender.core.epoch}>{to}#{index}".encode()
        (seq,) = sender.core.submit(to, [payload], now, notify=notify, ttl_ms=1500 if ttl else 0)
        self.sent[payload] = Sent(sender.name, sender.core.epoch, seq, to, index, notify, ttl)
        self._by_key[sender.name, sender.core.epoch, seq] = payload
        return payload

    def payload_of(self, sender: str, epoch: int, seq: int) -> bytes | None:
        return self._by_key.get((sender, epoch, seq))

    def check(self) -> None:
        """What must hold at every step: within an incarnation, nothing handed twice and
        every (sender incarnation, recipient) pair in order; across incarnations, each further
        hand-over of a message is a later delivery of it (the router counts deliveries: its
        attempt is higher), so a stopped holder never hands out what its successor already had.
        A router restart resets the count (no journal): those messages are exempt."""
        last: dict[tuple[bytes, str, int], int] = {}
        attempts: dict[bytes, int] = {}
        for payload, identity, attempt in self.handed:
            sent = self.sent[payload]
            key = (identity, sent.sender, sent.epoch)
            assert last.get(key, -1) < sent.index, f"{payload!r} out of order or twice"
            last[key] = sent.index
            if payload in attempts and payload not in self.restarted_before:
                assert attempt > attempts[payload], f"{payload!r} handed again, stale"
            attempts[payload] = attempt

    def unaccounted(self, dead: set[tuple[str, int, int]]) -> list[bytes]:
        """Messages neither handed over nor allowed to be missing."""
        handed = {p for p, _, _ in self.handed}
        missing = []
        for payload, s in self.sent.items():
            key = (s.sender, s.epoch, s.seq)
            if payload in handed or payload in self.may_lose or s.ttl:
                continue
            if key in self.failed or key in dead:
                continue
            missing.append(payload)
        return missing


class Sim:
    def __init__(
        self,
        names: list[str],
        *,
        window: int = 64,
        recv_window: int = 16,
        manual: tuple[str, ...] = (),
        slow: tuple[str, ...] = (),
        max_attempts: int = 10,
        journaled: bool = False,
        resident_bytes: int = 64 << 20,
    ) -> None:
        self.now = 0.0
        # With a journal, the router's batches wait in ``unwritten`` until the test writes
        # them (to a real SQLite database in memory); a restart keeps only what was written.
        self.journaled = journaled
        self.db = connect(":memory:") if journaled else None
        self.unwritten: list[Batch] = []
        self.options = ClientOptions(max_outbox=window, recv_window=recv_window, resend_after=1.0)
        self.router_options = RouterOptions(
            max_attempts=max_attempts, resident_bytes=resident_bytes
        )
        self.router_epoch = 1
        self.router = self._new_router()
        self.ledger = Ledger()
        self.peers: dict[str, Peer] = {}  # the newest incarnation of each name
        self.retired: list[Peer] = []  # older incarnations, still on the network
        self.links: dict[bytes, tuple[list[Parts], list[Parts]]] = {}  # identity -> (up, down)
        self.dead: set[tuple[str, int, int]] = set()  # dead-lettered by a router, any one
        self._epochs = 100
        self.slow = slow
        for name in names:
            self.start(name, manual=name in manual)

    # -- who is on the network ------------------------------------------------------------

    def _new_router(self) -> RouterCore:
        core = RouterCore(
            epoch=self.router_epoch,
            options=self.router_options,
            reachable=self._reachable,
            journaled=self.journaled,
        )
        if self.db is not None:
            opts = self.router_options
            core.restore(read(self.db, 0.0, opts.dead_max, opts.resident_bytes), self.now)
        return core

    def _reachable(self, identity: bytes) -> bool:
        return any(p.identity == identity and not p.gone for p in self.everyone())

    def everyone(self) -> list[Peer]:
        return [*self.peers.values(), *self.retired]

    def start(self, name: str, *, manual: bool = False, takeover: bool = False) -> Peer:
        """A new incarnation of ``name`` connects (the old one, if any, is retired)."""
        self._epochs += 1
        opts = msgspec.structs.replace(self.options, takeover=takeover)
        peer = Peer(name, ClientCore(name, epoch=self._epochs, options=opts, seed=self._epochs))
        peer.manual, peer.slow = manual, name in self.slow
        old = self.peers.get(name)
        if old is not None:
            self.retired.append(old)
        self.peers[name] = peer
        self.links[peer.identity] = ([], [])
        peer.core.connect(self.now)
        self.pump()
        return peer

    def identity(self, name: str) -> bytes:
        return self.peers[name].identity

    # -- what the test does ---------------------------------------------------------------

    def send(self, sender: str, to: str, *, notify: bool = False, ttl: bool = False) -> None:
        peer = self.peers[sender]
        if peer.core.refusal is not None:
            return  # the driver raises NameTakenError: nothing is sent
        self.ledger.send(peer, to, self.now, notify=notify, ttl=ttl)
        self.pump()

    def app_takes(self, name: str) -> None:
        """A slow application asks for its next message (it may wait: a lease, a gap)."""
        peer = self.peers[name]
        if not peer.stopped:
            self._hand_over(peer, limit=1)
            self.pump()

    def ack_held(self, name: str, index: int) -> None:
        peer = self.peers[name]
        if peer.held:
            msg = peer.held.pop(index % len(peer.held))
            peer.core.ack(msg.key)
            self.pump()

    def to_router(self, name: str, index: int = 0) -> None:
        self._to_router(self.peers[name], index)

    def to_client(self, name: str, index: int = 0) -> None:
        self._to_client(self.peers[name], index)

    def break_link(self, name: str, up: bool, at: int, router_saw_it: bool) -> None:
        """The connection of ``name`` breaks: frames from index ``at`` on, one way, are lost;
        the client hears of the drop and the reconnection; the router ends the session only
        if it saw the old connection die before the new one came."""
        peer = self.peers[name]
        link = self.links[peer.identity][0 if up else 1]
        del link[at:]
        peer.core.link_down(self.now)
        if router_saw_it:
            self.router.peer_gone(peer.identity, self.now)
        peer.core.link_up(self.now)
        self.pump()

    def write_journal(self, batches: int = 1 << 30) -> None:
        """The journal writes (and fsyncs) the oldest ``batches`` waiting, in one commit."""
        done, self.unwritten = self.unwritten[:batches], self.unwritten[batches:]
        if done and self.db is not None:
            write(self.db, done)
            self.router.durable(done[-1].number, self.now)
            for batch in done:  # spilled mail read back, as the journal's writer does
                for name, after, limit in batch.reads:
                    page = read_page(self.db, name, after, limit, 0.0)
                    self.router.paged_in(name, page, self.now)
            self.pump()

    def restart_router(self) -> None:
        """The router dies and a new one takes over the endpoint: every connection drops
        and comes back. Without a journal what it held is gone; with one, what it wrote
        comes back (what it had not written yet is gone, and nothing of that was receipted)."""
        self.dead |= {(d.sender, d.epoch, d.seq) for d in self.router.dead}
        handed = {p for p, _, _ in self.ledger.handed}
        self.unwritten.clear()
        for payload, s in self.ledger.sent.items():
            self.ledger.restarted_before.add(payload)
            if self.journaled:
                continue
            if (s.sender, s.epoch, s.seq) in self.ledger.accepted and payload not in handed:
                self.ledger.may_lose.add(payload)  # receipted to memory: lost with it
        self.router_epoch += 1
        self.router = self._new_router()
        for peer in self.everyone():
            up, down = self.links[peer.identity]
            up.clear()
            down.clear()
            if not peer.stopped:
                peer.core.link_down(self.now)
                peer.core.link_up(self.now)
        self.pump()

    def take_over(self, name: str) -> None:
        """A new incarnation takes the name from the live one, and gets going at once."""
        self._abandon(self.peers[name])
        self._exchange(self.start(name, manual=self.peers[name].manual, takeover=True))

    def stop_and_replace(self, name: str, stopped_for: float) -> None:
        """The holder, its backlog taken from the router, is stopped (SIGSTOP) longer than
        its connection lives: the router sees it gone, a successor takes the name and gets
        going; the old one wakes up later (``wake``)."""
        old = self.peers[name]
        while self.links[old.identity][1]:
            self._to_client(old)
        old.stopped = old.gone = True
        self._abandon(old)
        self.router.peer_gone(old.identity, self.now)
        self.advance(stopped_for)
        self._exchange(self.start(name, manual=old.manual))

    def retired_apps_take(self) -> None:
        """The applications of older incarnations ask for their next message."""
        for peer in self.retired:
            if not peer.stopped:
                self._hand_over(peer, limit=1)
        self.pump()

    def wake(self) -> None:
        """Stopped incarnations go on: their connection was closed while they slept."""
        for peer in self.retired:
            if peer.stopped:
                peer.stopped = peer.gone = False
                # The process runs before libzmq has told it that its connection died: its
                # application asks for mail first (the race the lease closes).
                self._hand_over(peer)
                peer.core.link_down(self.now)
                peer.core.link_up(self.now)
        self.pump()

    def advance(self, dt: float) -> None:
        self.now += dt
        self.router.tick(self.now)
        for peer in self.everyone():
            if not peer.stopped:
                peer.core.tick(self.now)
        self.pump()

    # -- the network ----------------------------------------------------------------------

    def _to_router(self, peer: Peer, index: int = 0) -> None:
        link = self.links[peer.identity][0]
        if link:
            self.router.handle(peer.identity, link.pop(index % len(link)), self.now)
            self.pump()

    def _to_client(self, peer: Peer, index: int = 0) -> None:
        link = self.links[peer.identity][1]
        if link and not peer.stopped:
            peer.core.receive(link.pop(index % len(link)), self.now)
            self.pump()

    def pump(self) -> None:
        """Move what every core wants to send onto the links; hand messages over; fold in
        the events."""
        ledger = self.ledger
        for peer in self.everyone():
            if peer.stopped:
                continue
            core = peer.core
            self.links[peer.identity][0].extend(core.outgoing(self.now))
            if not peer.slow:
                self._hand_over(peer)
            for ev in core.events():
                if isinstance(ev, Accepted):
                    ledger.accepted.update((peer.name, core.epoch, seq) for seq in ev.seqs)
                elif isinstance(ev, Failed):
                    ledger.failed.add((peer.name, core.epoch, ev.seq))
                elif isinstance(ev, Refused):
                    self._abandon(peer)  # its application hears the refusal
                elif isinstance(ev, Notified):
                    payload = ledger.payload_of(peer.name, core.epoch, ev.seq)
                    if payload is not None:
                        ledger.notices[payload].append(ev.status)
            self.links[peer.identity][0].extend(core.outgoing(self.now))
        for identity, parts, _ in self.router.take_output(self.now):
            if identity in self.links:
                self.links[identity][1].append(parts)
        batch = self.router.take_journal()
        if batch is not None:
            self.unwritten.append(batch)
        self.router.take_logs()

    def _exchange(self, peer: Peer) -> None:
        """Let ``peer`` and the router talk until they have nothing left to say, and its
        application take what it may."""
        for _ in range(100):
            up, down = self.links[peer.identity]
            if not up and not down:
                break
            self._to_router(peer)
            self._to_client(peer)
        self._hand_over(peer)
        self.pump()

    def _hand_over(self, peer: Peer, limit: int = 1 << 30) -> None:
        core = peer.core
        for _ in range(limit):
            msg = core.take_message(self.now)
            if msg is None:
                return
            self.ledger.handed.append((msg.payload, peer.identity, msg.attempt))
            if peer.manual:
                peer.held.append(msg)
            else:
                core.ack(msg.key)

    def settle(self, max_rounds: int = 400) -> None:
        """Run a perfect network (everyone awake, every held message acked) until nothing
        moves, time passing when it is still."""
        self.wake()
        for _ in range(max_rounds):
            moved = False
            for peer in self.everyone():
                if peer.slow and peer.core.received_waiting and not peer.stopped:
                    before = len(self.ledger.handed)
                    self._hand_over(peer)  # asking may first need a ping (the lease)
                    self.pump()
                    moved = moved or len(self.ledger.handed) > before
                while peer.held:
                    peer.core.ack(peer.held.pop().key)
                    moved = True
                up, down = self.links[peer.identity]
                while up or down:
                    moved = True
                    self._to_router(peer)
                    self._to_client(peer)
            if self.unwritten:
                self.write_journal()
                moved = True
            if not moved:
                if self.complete():
                    return
                self.advance(0.5)
        raise AssertionError(f"did not settle: missing {self.missing()[:10]}")

    def missing(self) -> list[bytes]:
        dead = self.dead | {(d.sender, d.epoch, d.seq) for d in self.router.dead}
        return self.ledger.unaccounted(dead)

    def complete(self) -> bool:
        live = [p for p in self.peers.values() if p.core.state == "ready"]
        return not self.missing() and not any(len(p.core.window) for p in live)

    # -- kept for the simple tests --------------------------------------------------------

    @property
    def got(self) -> dict[tuple[str, str], list[bytes]]:
        """(sender name, recipient name) -> payloads handed over, in order."""
        out: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        for payload, identity, _ in self.ledger.handed:
            out[self.ledger.sent[payload].sender, identity.decode().partition("/")[0]].append(
                payload
            )
        return out

    @property
    def sent(self) -> dict[tuple[str, str], list[bytes]]:
        out: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        for payload, s in self.ledger.sent.items():
            out[s.sender, s.to].append(payload)
        return out

    def _abandon(self, peer: Peer) -> None:
        """This incarnation will be refused: its unreceipted messages may never arrive."""
        for seq in peer.core.window.pending:
            payload = self.ledger.payload_of(peer.name, peer.core.epoch, seq)
            if payload is not None:
                self.ledger.may_lose.add(payload)
