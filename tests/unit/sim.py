"""An in-memory network of ClientCores around one RouterCore, with a hand on every frame.

Links are lists of multipart messages; the test decides which frame moves next, which is
duplicated or overtaken, when a connection breaks, and when time passes. No sockets, no
threads, no real clock.

As in ZMTP, a frame is lost only with its connection: a break loses a link's frames from some
point on, the client's monitor reports the drop and the reconnection (``link_down``,
``link_up``), and the router may or may not have seen the old connection die (``peer_gone``)
before the peer is back under the same identity.
"""

from __future__ import annotations

from collections import defaultdict

from zmqswarm.protocol import ClientCore, ClientOptions, Failed, RouterCore, RouterOptions
from zmqswarm.protocol.client_events import Accepted

Parts = list[bytes]


class Sim:
    def __init__(self, names: list[str], *, window: int = 64, recv_window: int = 16) -> None:
        self.now = 0.0
        self.router = RouterCore(epoch=1, options=RouterOptions())
        opts = ClientOptions(max_outbox=window, recv_window=recv_window, resend_after=1.0)
        self.clients = {
            n: ClientCore(n, epoch=100 + i, options=opts, seed=i + 1) for i, n in enumerate(names)
        }
        self.up: dict[str, list[Parts]] = {n: [] for n in names}  # client -> router
        self.down: dict[str, list[Parts]] = {n: [] for n in names}  # router -> client
        self.sent: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        self.got: dict[tuple[str, str], list[bytes]] = defaultdict(list)
        self.accepted: set[tuple[str, int]] = set()
        self.failed: list[Failed] = []
        for client in self.clients.values():
            client.connect(self.now)
        self.pump_out()

    def identity(self, name: str) -> bytes:
        return f"{name}/{self.clients[name].epoch}".encode()

    def send(self, sender: str, to: str) -> None:
        payload = f"{sender}>{to}#{len(self.sent[sender, to])}".encode()
        self.sent[sender, to].append(payload)
        self.clients[sender].submit(to, [payload], self.now)
        self.pump_out()

    def pump_out(self) -> None:
        """Move what every core wants to send onto the links, and fold in client events."""
        for name, client in self.clients.items():
            self.up[name].extend(client.outgoing(self.now))
            while (msg := client.take_message(self.now)) is not None:
                self.got[msg.key[0], name].append(msg.payload)
                client.ack(msg.key)
            for ev in client.events():
                if isinstance(ev, Accepted):
                    self.accepted.update((name, seq) for seq in ev.seqs)
                elif isinstance(ev, Failed):
                    self.failed.append(ev)
            self.up[name].extend(client.outgoing(self.now))
        by_identity = {self.identity(n): n for n in self.clients}
        for identity, parts, _ in self.router.take_output(self.now):
            self.down[by_identity[identity]].append(parts)

    def to_router(self, name: str, index: int = 0) -> None:
        link = self.up[name]
        if link:
            self.router.handle(self.identity(name), link.pop(index % len(link)), self.now)
            self.pump_out()

    def to_client(self, name: str, index: int = 0) -> None:
        link = self.down[name]
        if link:
            self.clients[name].receive(link.pop(index % len(link)), self.now)
            self.pump_out()

    def break_link(self, name: str, up: bool, at: int, router_saw_it: bool) -> None:
        """The connection of ``name`` breaks: frames from index ``at`` on, one way, are lost;
        the client hears of the drop and the reconnection; the router ends the session only
        if it saw the old connection die before the new one came."""
        link = self.up[name] if up else self.down[name]
        del link[at:]
        client = self.clients[name]
        client.link_down(self.now)
        if router_saw_it:
            self.router.peer_gone(self.identity(name), self.now)
        client.link_up(self.now)
        self.pump_out()

    def advance(self, dt: float) -> None:
        self.now += dt
        self.router.tick(self.now)
        for client in self.clients.values():
            client.tick(self.now)
        self.pump_out()

    def settle(self, max_rounds: int = 5000) -> None:
        """Run a perfect network until nothing moves and every message is in."""
        for _ in range(max_rounds):
            moved = False
            for name in self.clients:
                while self.up[name] or self.down[name]:
                    moved = True
                    self.to_router(name)
                    self.to_client(name)
            if not moved:
                if self.complete():
                    return
                self.advance(0.5)
        raise AssertionError(f"did not settle: sent {dict(self.sent)} got {dict(self.got)}")

    def complete(self) -> bool:
        return all(self.got[k] == v for k, v in self.sent.items()) and not any(
            len(c.window) for c in self.clients.values()
        )
