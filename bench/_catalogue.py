"""The bad-input catalogue as two attackers against a CURVE router: what each input is, and
which of the router's counters it must move.

``FuzzPeer``: an authenticated peer (its key is trusted) on raw DEALER sockets, sending what a
conforming client never would at the wire, envelope, codec, schema, protocol and identity
layers (catalogue ids B08-B27, as far as they apply to this protocol). ``RawPeer``: an
unauthenticated one on plain TCP sockets (B01-B07). Each input is one ``Case`` run once;
each run adds to ``expected``: counter expression -> how much it must have moved, where an
expression is one counter or a sum (``nack_out_of_order+withheld_out_of_order``).

Every payload a hostile input carries starts with ``HOSTILE``, and the inputs that name a
recipient name a legitimate one (``r0``) where they can: a recipient that ever sees one has
been handed a hostile input. The B numbers are the catalogue's (issue 21).
"""

from __future__ import annotations

import os
import random
import selectors
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import zmq

from zmqswarm.keys import ClientKeys
from zmqswarm.protocol import (
    MAX_HEADER,
    PROTOCOL_VERSION,
    Ack,
    Hello,
    Send,
    SendItem,
    Welcome,
    decode,
    encode,
)
from zmqswarm.transport import id_secret, new_epoch, routing_id

__all__ = [
    "FUZZ_CONNECTIONS",
    "HOSTILE",
    "VICTIM",
    "FuzzPeer",
    "RawPeer",
    "held_inside",
    "measure",
    "run_cases",
]

HOSTILE = b"HOSTILE"
VICTIM = "r0"  # the legitimate recipient that hostile inputs name
GHOSTS = 8  # B26: names nobody holds, mail to them waits (counted by the bench in its peers)
FLOOD = "flood.sink"  # B27: a name nobody holds, flooded until its mailbox quota refuses
FLOOD_ITEMS, FLOOD_SIZE = 16, 4096
FUZZ_CONNECTIONS = 5  # the fuzz peer's own: its four sockets, and its one peer list query
OVERSIZE_PART = 4 * (1 << 20) + (1 << 16) + 1  # past the router's ZMQ_MAXMSGSIZE (default)
_BAD_FRAME = {"bad_frames": 1, "nack_bad_frame": 1}
_NOT_ALLOWED = {"refused_not_allowed": 1, "nack_not_allowed": 1}
_CONNECTION = {"connections_accepted": 1, "connections_closed": 1}


@dataclass
class Case:
    id: str  # B-number and a word
    what: str
    run: Callable[[], None]
    counts: dict[str, int]  # counter expression -> increment per input
    every: int = 1  # run once per this many rounds


@dataclass
class Tally:
    injected: Counter[str] = field(default_factory=Counter)  # case id -> inputs
    expected: Counter[str] = field(default_factory=Counter)  # counter expression -> increment

    def add(self, case: Case) -> None:
        self.injected[case.id] += 1
        for key, n in case.counts.items():
            self.expected[key] += n


def curve_dealer(
    ctx: zmq.Context[Any], url: str, keys: ClientKeys, rid: bytes, connect: bool = True
) -> zmq.Socket[bytes]:
    sock: zmq.Socket[bytes] = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.ROUTING_ID, rid)
    sock.setsockopt(zmq.RECONNECT_IVL, -1)  # one connection per socket: counted exactly
    sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = keys
    if connect:
        sock.connect(url)
    return sock


class FuzzPeer:
    """An authenticated peer named ``fuzz`` (its key may use ``fuzz`` and ``fuzz.*``)."""

    def __init__(self, ctx: zmq.Context[Any], url: str, keys: ClientKeys) -> None:
        self.ctx, self.url, self.keys = ctx, url, keys
        self.rng = random.Random(21)
        self.tally = Tally()
        self.nacks: Counter[int] = Counter()  # what the router answered, by code
        epoch = new_epoch()

        def own(name: str) -> bytes:  # a well-formed id: refused, if at all, for its name
            return routing_id(name, epoch, id_secret(keys.secret, name, epoch))

        self.main = curve_dealer(ctx, url, keys, own("fuzz"))
        self.main.send(encode(Hello(PROTOCOL_VERSION, "fuzz", 1, 16)))
        self.sid = self._welcome()
        # B23: a legitimate sender's name under our key; B24: a recipient's name, to take
        # its mailbox before it comes back; B23: a Hello naming another than the routing id.
        self.spoof = curve_dealer(ctx, url, keys, own("s0"))
        self.preempt = curve_dealer(ctx, url, keys, own("r1"))
        self.inside = curve_dealer(ctx, url, keys, own("fuzz.inside"))
        self.poller = zmq.Poller()
        for sock in (self.main, self.spoof, self.preempt, self.inside):
            self.poller.register(sock, zmq.POLLIN)
        self.next_seq = 1
        self.sent: list[int] = []  # seqs accepted (valid sends to ghosts)
        self.gaps: list[int] = []  # seqs below the watermark never sent
        self.big = 0
        # B24: the live recipients' routing ids as any key may learn them (PeerList shows
        # each peer's name and epoch, not the secret that ends a CURVE peer's id).
        from zmqswarm.observe import list_peers

        peers = list_peers(url, timeout=10, curve=keys)
        self.victims = [routing_id(p.name, p.epoch) for p in peers if p.online and p.epoch]
        self.victims = [rid for rid in self.victims if rid.startswith(b"r")] or [b"r0/1"]
        self.taking: list[tuple[zmq.Socket[bytes], bytes, float]] = []
        self.live = 0
        self.unclosed = 0  # B24 connections whose handshake did not finish within 10 s
        self.cases = self._cases()

    def _welcome(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.main.poll(100):
                frame = decode(self.main.recv_multipart()[0])
                if isinstance(frame, Welcome):
                    return frame.session
        raise TimeoutError("no Welcome for the fuzz peer")

    def take_live_id(self) -> None:
        """B24: connect under a live recipient's routing id as the peer list gives it, and
        send a Hello under its name. Without the id's secret (with it, the connection would
        take the id over: ROUTER_HANDOVER) the router refuses the id, whatever the name."""
        self.live += 1
        rid = self.victims[self.live % len(self.victims)]
        # One connection under an id at a time: a second would take the id over
        # (ROUTER_HANDOVER), and the first would never hear its answer.
        deadline = time.monotonic() + 5
        while any(held == rid for _, held, _ in self.taking) and time.monotonic() < deadline:
            self.drain()
            time.sleep(0.001)  # polling interval of a deadline wait
        sock = curve_dealer(self.ctx, self.url, self.keys, rid)
        sock.send(encode(Hello(PROTOCOL_VERSION, rid.decode().rpartition("/")[0], 1, 16)))
        self.taking.append((sock, rid, time.monotonic()))

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until every B24 connection has had its answer (and is closed)."""
        deadline = time.monotonic() + timeout
        while self.taking and time.monotonic() < deadline:
            self.drain()
            time.sleep(0.01)  # polling interval of a deadline wait
        self.unclosed += len(self.taking)
        for sock, _, _ in self.taking:
            sock.close(0)
        self.taking = []

    def drain(self) -> None:
        """Read every answer (Nacks, Receipts): a peer that never reads would stall itself."""
        if self.taking:
            waiting = []
            for sock, rid, since in self.taking:
                if sock.poll(0):
                    self._count(sock.recv_multipart())
                    sock.close(0)
                elif time.monotonic() - since > 10:
                    self.unclosed += 1
                    sock.close(0)
                else:
                    waiting.append((sock, rid, since))
            self.taking = waiting
        for sock, _ in self.poller.poll(0):
            while True:
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._count(parts)

    def _count(self, parts: list[bytes]) -> None:
        code = msgspec.msgpack.decode(parts[0])
        if isinstance(code, list) and code and code[0] == 5 and len(code) > 2:
            self.nacks[code[2]] += 1

    def close(self) -> None:
        self.settle()
        for sock in (self.main, self.spoof, self.preempt, self.inside):
            sock.close(0)

    # -- the stream: valid sends settle what lies below them --------------------------------

    def _seqs(self, n: int) -> int:
        first = self.next_seq
        self.next_seq += n + 1
        self.gaps.append(first + n)  # never sent: below the watermark once a later base passes
        return first

    def _send(self, sock: zmq.Socket[bytes], header: bytes, *payloads: bytes) -> None:
        sock.send_multipart([header, *payloads])

    # -- the cases ---------------------------------------------------------------------------

    def _cases(self) -> list[Case]:
        m, rng = self.main, self.rng

        def valid() -> bytes:
            seq = self._seqs(1)
            return encode(Send(seq, [SendItem(seq, VICTIM)]))

        def wrong_type() -> None:
            seq = self._seqs(1)
            bad = rng.choice(
                [[["1", VICTIM]], [[1.0 * seq, VICTIM]], [[True, VICTIM]], [[-seq, VICTIM]]]
                + [[[2**63, VICTIM]], [[0, VICTIM]], [[seq, 7]], [[seq, VICTIM, -1]]]
                + [[[seq, VICTIM, 0, 1]], [[seq, None]], [[seq, VICTIM, 0, False, 2**53]]]
            )
            self._send(m, msgspec.msgpack.encode([3, seq, bad]), HOSTILE)

        def bad_utf8() -> None:
            seq = self._seqs(1)
            head = msgspec.msgpack.encode([3, seq, [[seq, "r\x00"]]])
            self._send(m, head.replace(b"r\x00", b"\xff\xfe"), HOSTILE)

        def huge_length() -> None:
            opener = rng.choice([b"\xdb", b"\xc6", b"\xdd", b"\xdf"])  # str32 bin32 array32 map32
            self._send(m, b"\x93\x03\x01" + opener + b"\xff\xff\xff\xff" + b"\0" * 92)

        def truncated() -> None:
            whole = valid()
            self._send(m, whole[: rng.randrange(len(whole))], HOSTILE)

        def replay() -> None:  # B20: a seq accepted before (it went to a ghost)
            seq = rng.choice(self.sent) if self.sent else self._seqs(1)
            self._send(m, encode(Send(1, [SendItem(seq, VICTIM)])), HOSTILE)

        def regression() -> None:  # B22: a seq below the watermark, never sent
            seq = self.gaps[0] if self.gaps else 1
            self._send(m, encode(Send(1, [SendItem(seq, VICTIM)])), HOSTILE)

        def gap() -> None:  # B21: prev is a seq never sent, above the watermark
            seq = self._seqs(2)
            self._send(m, encode(Send(seq, [SendItem(seq + 1, VICTIM, prev=seq)])), HOSTILE)

        def ghost() -> None:  # B26: a name nobody holds; its mail waits, never delivered
            seq = self._seqs(1)
            to = f"ghost.{seq % GHOSTS}"
            self._send(m, encode(Send(seq, [SendItem(seq, to)])), HOSTILE + b" ghost")
            self.sent.append(seq)

        def flood() -> None:  # B27: a burst of big messages, until the quota refuses them
            seq = self._seqs(FLOOD_ITEMS)
            items = [SendItem(seq + i, FLOOD) for i in range(FLOOD_ITEMS)]
            self._send(m, encode(Send(seq, items)), *[HOSTILE * (FLOOD_SIZE // 7)] * FLOOD_ITEMS)

        def oversize_part() -> None:  # B08: a part past ZMQ_MAXMSGSIZE, on its own connection
            self.big += 1
            sock = curve_dealer(self.ctx, self.url, self.keys, f"fuzz.big/{self.big:x}".encode())
            sock.setsockopt(zmq.LINGER, 5000)
            sock.send(HOSTILE * (OVERSIZE_PART // 7 + 1))
            sock.close()

        def seq_item(to: str, payload: bytes = HOSTILE) -> Callable[[], None]:
            def run() -> None:
                seq = self._seqs(1)
                self._send(m, encode(Send(seq, [SendItem(seq, to)])), payload)

            return run

        def hello(name: str) -> bytes:
            return encode(Hello(PROTOCOL_VERSION, name, 7, 16))

        def packed_wrong() -> bytes:
            seq = self._seqs(1)
            return encode(Send(seq, [SendItem(seq, VICTIM)], [len(HOSTILE)]))

        def send_to_victim() -> bytes:
            return encode(Send(self.next_seq, [SendItem(self.next_seq, VICTIM)]))

        return [  # B26 first: B20 replays what it sent
            Case("B26 unknown recipient", "mail to a name nobody holds", ghost,
                 {"queued:ghost.*": 1}),
            Case("B09 extra part", "a Send with a payload part too many",
                 lambda: self._send(m, valid(), HOSTILE, HOSTILE), _BAD_FRAME),
            Case("B09 missing part", "a Send without its payload part",
                 lambda: self._send(m, valid()), _BAD_FRAME),
            Case("B09 packed, miscut", "a packed Send whose sizes do not cut its part",
                 lambda: self._send(m, packed_wrong(), HOSTILE + HOSTILE), _BAD_FRAME),
            Case("B09 too many parts", "a Send with 10,000 payload parts (1,024 at most)",
                 lambda: self._send(m, valid(), *[HOSTILE] * 10_000), _BAD_FRAME, every=16),
            Case("B09 single-part kind", "an Ack with a second part",
                 lambda: self._send(m, encode(Ack(self.sid, 0)), HOSTILE), _BAD_FRAME),
            Case("B10 empty header", "an empty first part",
                 lambda: self._send(m, b"", HOSTILE), _BAD_FRAME),
            Case("B11 not msgpack", "0xc1 (never MessagePack), then random bytes",
                 lambda: self._send(m, b"\xc1" + os.urandom(rng.randrange(1, 200)), HOSTILE),
                 _BAD_FRAME),
            Case("B12 truncated", "a valid Send header cut short", truncated, _BAD_FRAME),
            Case("B13 huge length", "a str/bin/array/map declaring 4 GiB in 100 bytes",
                 huge_length, _BAD_FRAME),
            Case("B14 deep nesting", "20,000 nested arrays or maps",
                 lambda: self._send(m, rng.choice([b"\x91", b"\x81"]) * 20_000), _BAD_FRAME),
            Case("B15 unknown kind", "tag 42",
                 lambda: self._send(m, msgspec.msgpack.encode([42, "from the future"])),
                 {"bad_frames": 1, "nack_unknown_kind": 1}),
            Case("B15 router's kind", "a Welcome from a peer",
                 lambda: self._send(m, encode(Welcome(1, 1, 1, 0, 0, 0))), _BAD_FRAME),
            Case("B16 missing fields", "a Send or Hello with no fields",
                 lambda: self._send(m, rng.choice([b"\x91\x03", b"\x91\x01"])), _BAD_FRAME),
            Case("B17 wrong types", "seq as str/float/bool/negative/0/2^63, to as int, ...",
                 wrong_type, _BAD_FRAME),
            Case("B18 bad UTF-8", "invalid UTF-8 in a recipient name", bad_utf8, _BAD_FRAME),
            Case("B18 NUL in name", "a recipient 'r0\\0'", seq_item(f"{VICTIM}\x00"),
                 {"nack_invalid_name": 1}),
            Case("B18 long name", "a recipient of 129 characters", seq_item("r" * 129),
                 {"nack_invalid_name": 1}),
            Case("B18 header size", "a header over 64 KiB (a 70,000-character name)",
                 lambda: self._send(m, encode(Send(1, [SendItem(1, "r" * (MAX_HEADER + 4))])),
                                    HOSTILE),
                 {"bad_frames": 1, "nack_too_large": 1}),
            Case("B08 payload size", "a payload of max_payload + 1 bytes",
                 seq_item(VICTIM, HOSTILE + b"\0" * ((1 << 20) - 6)), {"nack_too_large": 1},
                 every=4),
            Case("B08 MAXMSGSIZE", "a 4 MiB + 64 KiB + 1 part, on a connection of its own",
                 oversize_part, _CONNECTION, every=16),
            Case("B20 replay", "an accepted seq again", replay, {"duplicates": 1}),
            Case("B21 seq gap", "prev names a seq never sent", gap,
                 {"nack_out_of_order+withheld_out_of_order": 1}),
            Case("B22 regression", "a seq below the watermark, never sent", regression,
                 {"duplicates": 1}),
            Case("B23 spoofed sender", "a Send under s0's routing id, with our key",
                 lambda: self._send(self.spoof, send_to_victim(), HOSTILE), _NOT_ALLOWED),
            Case("B23 name not the id's", "a Hello naming r0 on our own routing id",
                 lambda: self._send(self.inside, hello(VICTIM)), _NOT_ALLOWED),
            Case("B24 pre-empt a mailbox", "a Hello under r1's routing id, with our key",
                 lambda: self._send(self.preempt, hello("r1")), _NOT_ALLOWED),
            Case("B24 a live routing id", "a connection under a live recipient's routing id as "
                 "the peer list gives it", self.take_live_id, _CONNECTION | _NOT_ALLOWED),
            Case("B25 ack never sent", "an Ack beyond the last delivery",
                 lambda: self._send(m, encode(Ack(self.sid, 10**9))), {"bad_acks": 1}),
            Case("B25 another's session", "an Ack of a session not ours",
                 lambda: self._send(m, encode(Ack(self.sid + 10**6, 1))), {"bad_acks": 1}),
            Case("B26 invalid recipient", "a recipient 'no such name!'",
                 seq_item("no such name!"), {"nack_invalid_name": 1}),
            Case("B27 flood", f"{FLOOD_ITEMS} x {FLOOD_SIZE} B to one name nobody holds", flood,
                 {f"queued:{FLOOD}+nack_mailbox_full+withheld_mailbox_full": FLOOD_ITEMS}),
        ]  # fmt: skip


# -- unauthenticated: raw TCP ------------------------------------------------------------------


def greeting(mechanism: bytes) -> bytes:
    """A ZMTP 3.0 greeting (signature, version 3.0, mechanism, as-server 0, filler)."""
    return b"\xff" + b"\0" * 8 + b"\x7f\x03\x00" + mechanism.ljust(20, b"\0") + b"\0" * 32


def command(name: bytes, body: bytes) -> bytes:
    data = bytes([len(name)]) + name + body
    if len(data) < 256:
        return b"\x04" + bytes([len(data)]) + data
    return b"\x06" + len(data).to_bytes(8, "big") + data


_READY = command(b"READY", b"\x0bSocket-Type\x00\x00\x00\x06DEALER")
_HANDSHAKE_PROTOCOL = {**_CONNECTION, "handshake_failed_protocol": 1}


class RawPeer:
    """Plain TCP connections to ``host:port``: each input is one connection, which sends its
    bytes and stays open until the router closes it (so the router, not we, decides how it
    ends). Connections are watched together, not waited for one by one: ``poll`` reaps the
    closed ones, ``settle`` waits for the last (a silent one lasts HANDSHAKE_IVL, 5 s)."""

    def __init__(self, host: str, port: int, ctx: zmq.Context[Any], url: str, eve: ClientKeys):
        self.host, self.port, self.ctx, self.url, self.eve = host, port, ctx, url, eve
        self.rng = random.Random(7)
        self.tally = Tally()
        self.open = selectors.DefaultSelector()
        self.refused: list[tuple[zmq.Socket[bytes], zmq.Socket[bytes], float]] = []
        self.unclosed = 0  # connections the router had not closed within the wait
        self.cases = self._cases()

    def connect(self, data: bytes) -> None:
        s = socket.create_connection((self.host, self.port), timeout=3)
        try:
            s.sendall(data)
        except OSError:  # reset: closed by the router while we still sent
            s.close()
            return
        s.setblocking(False)
        self.open.register(s, selectors.EVENT_READ)

    def unknown_key(self) -> None:
        """A real CURVE client whose key is not in the allow list, one connection."""
        sock = curve_dealer(self.ctx, self.url, self.eve, b"eve/1", connect=False)
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_AUTH)
        sock.connect(self.url)  # after the monitor: its event cannot come first
        self.refused.append((sock, monitor, time.monotonic()))

    def poll(self) -> bool:
        """Reap what the router closed; whether anything is still open."""
        for key, _ in self.open.select(0):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self.open.unregister(s)
                s.close()
        now, waiting = time.monotonic(), []
        for sock, monitor, since in self.refused:
            if monitor.poll(0) or now - since > 10:
                self.unclosed += not monitor.poll(0)
                sock.disable_monitor()
                monitor.close(0)
                sock.close(0)
            else:
                waiting.append((sock, monitor, since))
        self.refused = waiting
        return bool(self.refused or self.open.get_map())

    def settle(self, timeout: float) -> None:
        """Wait until the router has closed every connection, silent ones too."""
        deadline = time.monotonic() + timeout
        while self.poll() and time.monotonic() < deadline:
            time.sleep(0.02)  # polling interval of a deadline wait
        for key in list(self.open.get_map().values()):
            self.unclosed += 1
            self.open.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]
        for sock, monitor, _ in self.refused:
            self.unclosed += 1
            monitor.close(0)
            sock.close(0)
        self.refused = []

    def garbage(self) -> None:
        """Random bytes whose first is not 0xff: libzmq takes them for an unversioned (ZMTP
        1.0) peer and closes without a handshake event. (0xff, and bit 0 of byte 9 set, 1 in
        512 random inputs, is a versioned greeting, and a protocol failure gets counted.)"""
        data = bytearray(os.urandom(self.rng.randrange(64, 65536)))
        data[0] = self.rng.randrange(0xFF)
        self.connect(bytes(data))

    def slowloris(self) -> None:
        s = socket.create_connection((self.host, self.port), timeout=3)
        s.setblocking(False)
        self.open.register(s, selectors.EVENT_READ)

    def _cases(self) -> list[Case]:
        hello_body = b"\x01\x00" + b"\0" * 72 + os.urandom(32) + b"\0" * 8 + os.urandom(80)
        return [
            Case("B01 garbage", "64 B to 64 KiB of random bytes instead of a greeting",
                 self.garbage, _CONNECTION),
            Case("B02 downgrade", "a ZMTP 1.0 greeting and a 'sneaky' message",
                 lambda: self.connect(b"\x01\x00\x08\x00sneaky\0"), _CONNECTION),
            Case("B03 NULL", "the NULL mechanism against CURVE",
                 lambda: self.connect(greeting(b"NULL") + _READY), _HANDSHAKE_PROTOCOL),
            Case("B03 PLAIN", "the PLAIN mechanism against CURVE",
                 lambda: self.connect(greeting(b"PLAIN")), _HANDSHAKE_PROTOCOL),
            Case("B03 unknown key", "a CURVE client whose key is not let in", self.unknown_key,
                 {**_CONNECTION, "handshake_refused_key": 1}),
            Case("B04 HELLO length", "a CURVE HELLO of the wrong length",
                 lambda: self.connect(greeting(b"CURVE") + command(b"HELLO", b"\x01\x00")),
                 _HANDSHAKE_PROTOCOL),
            Case("B04 HELLO version", "a CURVE HELLO of version 9.9",
                 lambda: self.connect(greeting(b"CURVE") + command(b"HELLO", b"\x09\x09"
                                                                   + hello_body[2:])),
                 _HANDSHAKE_PROTOCOL),
            Case("B04 HELLO box", "a CURVE HELLO whose box does not open",
                 lambda: self.connect(greeting(b"CURVE") + command(b"HELLO", hello_body)),
                 _HANDSHAKE_PROTOCOL),
            Case("B06 slowloris", "a connection that says nothing (closed after 5 s)",
                 self.slowloris, {**_CONNECTION, "handshake_failed": 1}),
            Case("B07 2^63-1 frame", "a frame header announcing 2^63-1 bytes after a greeting",
                 lambda: self.connect(greeting(b"CURVE") + b"\x06"
                                      + (2**63 - 1).to_bytes(8, "big")), _CONNECTION),
        ]  # fmt: skip


def measure(expr: str, stats: dict[str, int], queued: dict[str, int]) -> int:
    """A counter expression's value: counters from the router's stats, ``queued:NAME`` (or
    ``queued:PREFIX*``) from its peer list, summed."""
    total = 0
    for term in expr.split("+"):
        if term.startswith("queued:"):
            name = term[len("queued:") :]
            if name.endswith("*"):
                total += sum(n for peer, n in queued.items() if peer.startswith(name[:-1]))
            else:
                total += queued.get(name, 0)
        else:
            total += stats.get(term, 0)
    return total


def held_inside(queued: dict[str, int]) -> int:
    """Messages the attack got accepted (into ghost and flood mailboxes, never delivered)."""
    return sum(n for name, n in queued.items() if name.startswith(("ghost.", FLOOD)))


PACE_TICK = 0.01  # seconds of inputs sent as one burst


def run_cases(
    cases: list[Case], tally: Tally, rate: float, until: Callable[[], bool], rounds: int = 0
) -> None:
    """Run ``cases`` round after round at about ``rate`` inputs a second, until ``until()``
    says stop (checked between inputs) or, if ``rounds``, that many rounds are done. Paced
    in ticks of ``PACE_TICK``: a burst, then a sleep, for the same rate with a tenth of the
    wake-ups (an attacker here shares the legitimate peers' two cores, and every wake-up
    preempts one of them; an attacker elsewhere would cost them nothing)."""
    start, done, n = time.monotonic(), 0, 0
    while not until() and (not rounds or n < rounds):
        for case in cases:
            if n % case.every:
                continue
            case.run()
            tally.add(case)
            done += 1
            ahead = done / rate - (time.monotonic() - start)
            if ahead > PACE_TICK:
                time.sleep(ahead)  # pacing to the rate, not a synchronisation
            if until():
                return
        n += 1
