"""Journaling: what the router's core asks its journal to keep, and what waits for it.

With a journal, a receipt is a promise that the message is on disk. The core cannot write, so
each turn it collects what changed (messages accepted, finished, dead; sender watermarks) into
a numbered ``Batch``. The driver hands every batch to the journal's writer and tells the core
when one is durable (``Effects.durable``); frames that promise something the batch holds (a
Receipt, a Welcome that tells a sender what was accepted) wait until then, and so does every
later frame to the same peer, so a peer never hears of a message out of order.

A message is written once, when it is accepted, and deleted when it is acked or buried; its
attempts are written when a session ends with it out (the poison-pill count survives a
restart, give or take the deliveries of the last moments before a crash). Deliveries do not
wait for the journal: a message delivered before its batch is durable and lost in a crash is
resent by its sender (never receipted) and dropped as a duplicate by the recipient's dedup.

A batch holds rows ready to store, times in wall-clock seconds (the core adds the offset it
was given: a restarted router's own clock starts afresh); ``Restored`` comes back in the
core's clock. A message's row is a plain tuple, built once per message, that the journal
stores as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from .router_state import Stream

__all__ = ["Batch", "DeadRow", "JournalLog", "Put", "PutRow", "Restored", "Spill", "StreamRow"]

PutRow = tuple[int, str, str, int, int, bytes, bool, "float | None", float, int]
"""One accepted message as stored: (rid, recipient, sender, epoch, seq, payload, notify,
expires or None, accepted, attempts), times in wall-clock seconds."""


class Put(msgspec.Struct, array_like=True, gc=False):
    """One accepted message, as restored (times in the core's clock)."""

    rid: int  # the router's record number: acceptance order, router-wide
    to: str
    sender: str
    epoch: int
    seq: int
    payload: bytes
    notify: bool
    expires: float  # the core's clock; INF when the message has no ttl
    accepted: float
    attempts: int = 0


class StreamRow(msgspec.Struct, array_like=True, gc=False):
    """A sender incarnation's dedup watermark: every seq <= wm, and those in ``above``."""

    name: str
    epoch: int
    wm: int
    above: list[int]
    last_seen: float


class DeadRow(msgspec.Struct, array_like=True, gc=False):
    id: int
    to: str
    sender: str
    epoch: int
    seq: int
    payload: bytes
    code: int
    at: float


class Batch(msgspec.Struct, array_like=True, gc=False):
    """What changed in one turn, applied by the journal with the others waiting in one
    transaction. Times in wall-clock seconds."""

    number: int
    puts: list[PutRow]
    done: list[int]  # rids acked or buried: deleted
    attempts: list[tuple[int, int]]  # (rid, attempts) of messages a session had out
    streams: list[StreamRow]
    forgotten: list[tuple[str, int]]  # streams gone quiet for stream_ttl
    dead: list[DeadRow]
    dead_upto: int  # dead letters numbered <= this were dropped (listed and let go, or old)
    # Pages of spilled mail to read back once this batch is written: (name, after rid, limit)
    reads: list[tuple[str, int, int]] = []


class Spill(msgspec.Struct, array_like=True, gc=False):
    """A mailbox's mail left on disk when the journal was read: how much, after which rid."""

    name: str
    count: int
    nbytes: int
    cursor: int


class Restored(msgspec.Struct, gc=False):
    """What a journal held when the router started: messages in acceptance order (as many
    as the memory budget holds), what stayed on disk per name, watermarks, dead letters."""

    puts: list[Put] = []
    streams: list[StreamRow] = []
    dead: list[DeadRow] = []
    spills: list[Spill] = []
    next_rid: int = 1


class JournalLog:
    """Collects one batch at a time. The core calls the recorders as things happen; the
    driver takes a batch at the end of each turn that changed something."""

    def __init__(self, wall_offset: float = 0.0) -> None:
        self.wall_offset = wall_offset  # the core's clock + this = wall-clock seconds
        self.number = 1  # the batch being filled
        self.next_rid = 1
        self.puts: list[PutRow] = []
        self.done: list[int] = []
        self.attempts: list[tuple[int, int]] = []
        self.streams: set[tuple[str, int]] = set()  # keys of streams that changed
        self.forgotten: list[tuple[str, int]] = []
        self.dead: list[DeadRow] = []
        self.dead_upto = 0
        self.reads: list[tuple[str, int, int]] = []

    def pending(self) -> bool:
        return bool(
            self.puts or self.done or self.attempts or self.streams or self.forgotten
        ) or bool(self.dead or self.dead_upto or self.reads)

    def take(self, streams: Mapping[tuple[str, int], Stream]) -> Batch:
        """Close the batch being filled, with the changed ones of ``streams`` (the sender
        watermarks) as they stand now."""
        rows = []
        for key in self.streams:
            s = streams.get(key)
            if s is not None:
                seen = s.last_seen + self.wall_offset
                rows.append(StreamRow(key[0], key[1], s.wm, sorted(s.above), seen))
        batch = Batch(
            self.number, self.puts, self.done, self.attempts, rows, self.forgotten,
            self.dead, self.dead_upto, self.reads,
        )  # fmt: skip
        self.number += 1
        self.puts, self.done, self.attempts, self.forgotten, self.dead = [], [], [], [], []
        self.reads = []
        self.streams = set()
        self.dead_upto = 0
        return batch
