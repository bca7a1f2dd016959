"""What a spool (a sender's unreceipted messages) and a recipient's state (what it has handed
over and acked) write down, and what that folds back into. Pure: records in and out as bytes;
the file, its lock and its fsyncs are zmqswarm/client/store.py's.

A resume log is a sequence of records, each ``length | crc32(body) | crc32(those 8 bytes) |
body`` (u32 little-endian each), the body a MessagePack array whose first element is the
record's kind. It is only ever appended to, and rewritten whole (compacted) once most
of it is history. A process killed in the middle of an append leaves one unfinished record at
the end: ``scan`` drops it. Damage anywhere else is an error, never guessed around.

Rule 1: ``SpoolLog`` and ``SeenLog`` decide what is written and what it means; the store only
writes it. Rule 2: no I/O and no clock: times are passed in.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

import msgspec

__all__ = ["Done", "Head", "Msg", "Record", "Scan", "SeenLog", "Seen", "SpoolLog", "frame", "scan"]

# length | crc32 of the body | crc32 of those 8 bytes: a header that fails its own check is
# damage, one that passes but whose body runs past the end is an append cut short.
HEADER = struct.Struct("<III")
MAX_RECORD = 1 << 30
# Hello attempts a process may use before its spool says so again: a process that resumes a
# stream starts above every attempt an earlier one could have used (the router ignores a
# Hello whose attempt is not above that of the session it holds for the routing id).
HELLO_BLOCK = 1 << 24
COMPACT_AT = 8 << 20  # bytes of journal before compaction is considered
CLOSE_COMPACT_AT = 64 << 10  # ... and when a process lets go of it: the next opens it fast


class Head(msgspec.Struct, array_like=True, tag=1, frozen=True):
    """The first record, written again whenever its values move."""

    kind: str  # "spool" or "state"
    name: str  # the peer name the journal belongs to
    epoch: int  # the stream's epoch (spool); 0 for a state
    next_seq: int  # every seq below it was used (spool)
    hellos: int  # Hello attempts the stream may have used so far


class Msg(msgspec.Struct, array_like=True, tag=2, frozen=True, gc=False):
    """A message sent (``send()`` returned) and not yet known to be settled."""

    seq: int
    to: str
    notify: bool
    deadline_ms: int  # wall clock (ms since the Unix epoch) past which it is not wanted; 0: none
    payload: bytes


class Done(msgspec.Struct, array_like=True, tag=3, frozen=True):
    """Messages settled (receipted, or abandoned): [first, last, first, last, ...]."""

    spans: list[int]


class Seen(msgspec.Struct, array_like=True, tag=4, frozen=True):
    """The recipient acked message (sender, epoch, seq). ``upto``: and every message of that
    stream it was handed before; else a message before it is still with the application."""

    sender: str
    epoch: int
    seq: int
    upto: bool


Record = Head | Msg | Done | Seen
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Record).decode


def frame(record: Record) -> bytes:
    body = _encode(record)
    head = _LENGTH_CRC.pack(len(body), zlib.crc32(body))
    return head + _CHECK.pack(zlib.crc32(head)) + body


_LENGTH_CRC = struct.Struct("<II")
_CHECK = struct.Struct("<I")


class Scan(NamedTuple):
    records: list[Record]
    starts: list[int]  # where each record starts
    end: int  # where the last whole record ends


def scan(data: bytes) -> Scan:
    """The records of a journal, and where the last whole one ends: what follows it is an
    append that a kill (or a crash) cut short. ValueError: damage anywhere else.

    A bad record is the cut-short last append when nothing but zeros (blocks a crashed
    machine never wrote) follows where it should have ended; else it is damage."""
    records: list[Record] = []
    starts: list[int] = []
    view = memoryview(data)
    at, end = 0, len(data)
    while at < end:
        if end - at < HEADER.size:
            break  # a cut header
        length, crc, check = HEADER.unpack_from(data, at)
        body = at + HEADER.size
        if zlib.crc32(view[at : at + 8]) != check or not 0 < length <= MAX_RECORD:
            if _zeros(data, body):
                break
            raise ValueError(f"damaged record header at byte {at} of {end}")
        stop = body + length
        if zlib.crc32(view[body:stop]) != crc:
            if _zeros(data, stop):
                break
            raise ValueError(f"damaged record at byte {at} of {end} (bad checksum)")
        try:
            records.append(_decode(view[body:stop]))
        except msgspec.ValidationError as exc:
            raise ValueError(f"record at byte {at}: {exc}") from None
        starts.append(at)
        at = stop
    return Scan(records, starts, at)


def _zeros(data: bytes, start: int) -> bool:
    """Whether only zeros (or nothing) follow ``start``."""
    return start >= len(data) or data.count(0, start) == len(data) - start


def _spans(seqs: Iterable[int]) -> list[int]:
    out: list[int] = []
    for seq in sorted(seqs):
        if out and out[-1] == seq - 1:
            out[-1] = seq
        else:
            out += (seq, seq)
    return out


class SpoolLog:
    """A sender's spool: its stream (name, epoch), the next seq, and the messages sent and
    not yet settled, with where they lie in the journal. Built from what an existing journal
    holds (or nothing); ``add`` and ``settle`` return what to append."""

    def __init__(self, found: Scan, name: str, epoch: int) -> None:
        records = found.records
        head = _head(records, "spool", name)
        self.name = name
        self.epoch = head.epoch if head else epoch
        self.next_seq = head.next_seq if head else 1
        hellos = 0
        self.unsent: dict[int, Msg] = {}  # seq -> message, at open
        # seq -> (offset, length) of its record: compaction copies these, never decodes.
        # In seq order, which is the journal's order.
        self._live: dict[int, tuple[int, int]] = {}
        ends = [*found.starts[1:], found.end][: len(found.starts)]
        for rec, at, stop in zip(records, found.starts, ends, strict=True):
            if isinstance(rec, Msg):
                self.unsent[rec.seq] = rec
                self._live[rec.seq] = (at, stop - at)
                self.next_seq = max(self.next_seq, rec.seq + 1)
            elif isinstance(rec, Done):
                self._drop(rec.spans)
            elif isinstance(rec, Head):
                if rec.epoch != self.epoch:
                    raise ValueError(f"a second epoch ({rec.epoch:x}, not {self.epoch:x})")
                self.next_seq, hellos = max(self.next_seq, rec.next_seq), max(hellos, rec.hellos)
        self.hellos = hellos  # this process says Hello with attempts above these
        self.reserved = hellos + HELLO_BLOCK  # ... and below these
        self._live_bytes = sum(size for _, size in self._live.values())

    def opening(self) -> list[bytes]:
        """What opens a process's use: the head, reserving the Hello attempts it may use."""
        return [frame(self.head())]

    def reserve(self, used: int) -> list[bytes]:
        """The process has used ``used`` Hello attempts: reserve more if it nears the end."""
        if used < self.reserved - HELLO_BLOCK // 2:
            return []
        self.reserved = used + HELLO_BLOCK
        return [frame(self.head())]

    def head(self) -> Head:
        return Head("spool", self.name, self.epoch, self.next_seq, self.reserved)

    def add(
        self, seq: int, to: str, payloads: list[bytes], notify: bool, deadline_ms: int, at: int
    ) -> list[bytes]:
        """Records for messages ``seq``, ``seq + 1``... to be appended at offset ``at``."""
        out = []
        live = self._live
        for payload in payloads:
            record = frame(Msg(seq, to, notify, deadline_ms, payload))
            out.append(record)
            live[seq] = (at, len(record))
            at += len(record)
            self._live_bytes += len(record)
            seq += 1
        self.next_seq = seq
        return out

    def settle(self, seqs: list[int]) -> bytes:
        live = self._live
        for seq in seqs:
            self._live_bytes -= live.pop(seq, (0, 0))[1]
        return frame(Done(_spans(seqs)))

    def compact_due(self, size: int, limit: int = COMPACT_AT) -> bool:
        """Whether the journal (``size`` bytes) is mostly history: rewrite it."""
        return size > limit and size > 2 * self._live_bytes

    def compaction(self) -> tuple[list[bytes], list[tuple[int, int]]]:
        """The journal rewritten: the head, then the (offset, length) ranges of the journal
        that hold the messages still unsettled, in order (adjacent ones merged)."""
        ranges: list[tuple[int, int]] = []
        for at, size in self._live.values():
            if ranges and sum(ranges[-1]) == at:
                ranges[-1] = (ranges[-1][0], ranges[-1][1] + size)
            else:
                ranges.append((at, size))
        return [frame(self.head())], ranges

    def moved(self, at: int) -> None:
        """The compaction is done: the unsettled messages now lie one after the other from
        offset ``at``."""
        live = self._live
        for seq, (_, size) in live.items():
            live[seq] = (at, size)
            at += size

    def _drop(self, spans: list[int]) -> None:
        unsent, live = self.unsent, self._live
        for first, last in zip(spans[::2], spans[1::2], strict=True):
            if last - first > len(unsent):
                seqs: Iterable[int] = [s for s in unsent if first <= s <= last]
            else:
                seqs = range(first, last + 1)
            for seq in seqs:
                unsent.pop(seq, None)
                live.pop(seq, None)


Stream = tuple[str, int]


class SeenLog:
    """A recipient's state: per stream (sender, epoch), what its application was handed and
    acked. ``high``: every message of the stream up to it that was handed over is acked;
    ``above``: acked messages above ``high`` (a message before them is still unacked).

    An ack is written before the Ack frame leaves (the router forgets an acked message, so a
    redelivery means our Ack was lost, and this is what recognises it).
    """

    def __init__(self, found: Scan, name: str, max_streams: int = 100_000) -> None:
        records = found.records
        self._fresh = _head(records, "state", name) is None
        self.name = name
        self.max_streams = max_streams
        self.high: dict[Stream, int] = {}
        self.above: dict[Stream, set[int]] = {}
        for rec in records:
            if isinstance(rec, Seen):
                self._note((rec.sender, rec.epoch), rec.seq, rec.upto)
        for stream, seqs in list(self.above.items()):
            self._prune(stream, seqs)
        self._open: dict[Stream, deque[int]] = {}  # handed, not acked, in hand-over order
        self._early: set[tuple[str, int, int]] = set()  # acked while one before was not
        self._written = 0  # records since the journal was last rewritten

    def opening(self) -> list[bytes]:
        return [frame(Head("state", self.name, 0, 0, 0))] if self._fresh else []

    def handed(self, sender: str, epoch: int, seq: int) -> None:
        """The application has it and will ack it later (``auto_ack=False``)."""
        opened = self._open.get((sender, epoch))
        if opened is None:
            opened = self._open[sender, epoch] = deque()
        opened.append(seq)

    def acked(self, sender: str, epoch: int, seq: int) -> bytes:
        stream = (sender, epoch)
        opened = self._open.get(stream)
        upto = True
        if opened:
            if opened[0] != seq:
                upto = False  # one handed before it is still with the application
                self._early.add((sender, epoch, seq))
            else:
                opened.popleft()
                early = self._early
                while opened and (sender, epoch, opened[0]) in early:
                    early.discard((sender, epoch, opened.popleft()))
            if not opened:
                del self._open[stream]
        self._note(stream, seq, upto)
        self._written += 1
        return frame(Seen(sender, epoch, seq, upto))

    def compact_due(self, size: int, limit: int = COMPACT_AT) -> bool:
        return size > limit and self._written > 4 * (len(self.high) + len(self.above) + 1)

    def compaction(self) -> tuple[list[bytes], list[tuple[int, int]]]:
        """The journal rewritten from what it means: nothing of it is copied."""
        self._written = 0
        out = [frame(Head("state", self.name, 0, 0, 0))]
        for (sender, epoch), seq in self.high.items():
            out.append(frame(Seen(sender, epoch, seq, True)))
        for stream, seqs in list(self.above.items()):
            self._prune(stream, seqs)
            out += (frame(Seen(*stream, seq, False)) for seq in sorted(seqs))
        return out, []

    def moved(self, at: int) -> None:
        pass

    def _note(self, stream: Stream, seq: int, upto: bool) -> None:
        if upto:
            high = self.high
            if seq > high.get(stream, 0):
                high[stream] = seq
            if len(high) > self.max_streams:  # as the inbox does: the first seen go first
                for stale in list(high)[: len(high) // 2]:
                    del high[stale]
                    self.above.pop(stale, None)
        else:
            self.above.setdefault(stream, set()).add(seq)

    def _prune(self, stream: Stream, seqs: set[int]) -> None:
        high = self.high.get(stream, 0)
        seqs -= {s for s in seqs if s <= high}
        if not seqs:
            del self.above[stream]


def _head(records: list[Record], kind: str, name: str) -> Head | None:
    if not records:
        return None
    head = records[0]
    if not isinstance(head, Head):
        raise ValueError("it does not start with a head record")
    if head.kind != kind:
        raise ValueError(f"it is a {head.kind}, not a {kind}")
    if head.name != name:
        raise ValueError(f"it belongs to {head.name!r}, not {name!r}")
    return head
