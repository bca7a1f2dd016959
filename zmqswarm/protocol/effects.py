"""What the router's core wants done, collected for its driver: frames to send, records to
journal, counters to publish, and log lines to write. The core decides; it never sends,
writes or logs itself.

With a journal, frames that promise what the open batch holds wait for it to be durable, and
so does every frame after them to the same peer (see journaling.py)."""

from __future__ import annotations

from collections import deque

from .codec import encode
from .frames import Code, Nack
from .journaling import JournalLog
from .router_state import Output
from .send_window import INF

__all__ = ["LOG_EVERY", "STATS", "Effects"]

LOG_EVERY = 10.0  # seconds: one log line per kind of event, counters carry the totals

STATS = (
    "accepted",
    "duplicates",
    "delivered",
    "acked",
    "held",
    "redelivered",
    "dead",
    "dead_dropped",
    "bad_frames",
    "bad_acks",  # Acks of deliveries never sent: ignored
    "resumed",  # Hellos from a sender incarnation already known: reconnects
    "disconnected",  # sessions ended because their connection was gone
    "store_failures",  # times the journal began failing to write (disk full, I/O error)
)


class Effects:
    def __init__(self, journaled: bool = False, wall_offset: float = 0.0) -> None:
        self.journal = JournalLog(wall_offset) if journaled else None
        self.durable_upto = 0  # every batch numbered up to this is on disk
        self._gated: deque[tuple[int, Output]] = deque()  # (batch it waits for, frame)
        self._gated_ids: dict[bytes, int] = {}  # peer -> its frames waiting in _gated
        self.out: list[Output] = []
        self.stats: dict[str, int] = dict.fromkeys(STATS, 0)
        self.logs: list[str] = []
        self._logged: dict[str, float] = {}

    def send(self, identity: bytes, parts: list[bytes], first_dseq: int = 0) -> None:
        """One multipart message to ``identity``; ``first_dseq`` names a Deliver's first
        delivery, for ``undeliver`` should the driver fail to send it."""
        if self._gated_ids and identity in self._gated_ids:
            self._gate(identity, (identity, parts, first_dseq))  # behind a promise: in order
        else:
            self.out.append((identity, parts, first_dseq))

    def send_durable(self, identity: bytes, parts: list[bytes]) -> None:
        """A frame that promises what the open batch holds (a Receipt, a Welcome): with a
        journal it waits until that batch is on disk."""
        if self.journal is None:
            self.out.append((identity, parts, 0))
        else:
            self._gate(identity, (identity, parts, 0))

    def durable(self, number: int) -> None:
        """Batches up to ``number`` are on disk: what waited for them goes out."""
        self.durable_upto = max(self.durable_upto, number)
        gated, ids = self._gated, self._gated_ids
        while gated and gated[0][0] <= number:
            output = gated.popleft()[1]
            self.out.append(output)
            identity = output[0]
            if ids[identity] == 1:
                del ids[identity]
            else:
                ids[identity] -= 1

    def waiting_for(self, number: int) -> bool:
        """Does a frame wait for batch ``number``?"""
        return bool(self._gated) and self._gated[-1][0] >= number

    def _gate(self, identity: bytes, output: Output) -> None:
        assert self.journal is not None
        self._gated.append((self.journal.number, output))
        self._gated_ids[identity] = self._gated_ids.get(identity, 0) + 1

    def nack(self, identity: bytes, seq: int, code: Code, reason: str, retry_ms: int = 0) -> None:
        key = f"nack_{code.name.lower()}"
        self.stats[key] = self.stats.get(key, 0) + 1
        self.send(identity, [encode(Nack(seq, int(code), reason, retry_ms))])

    def withheld(self, code: Code) -> None:
        """A message refused without a Nack of its own (one retriable Nack per sender and
        recipient per turn tells its sender): counted, so that every refusal is."""
        key = f"withheld_{code.name.lower()}"
        self.stats[key] = self.stats.get(key, 0) + 1

    def log(self, key: str, message: str, now: float) -> None:
        """A line for the driver to log, at most once per ``key`` per ``LOG_EVERY``."""
        if now - self._logged.get(key, -INF) >= LOG_EVERY:
            self._logged[key] = now
            self.logs.append(f"{message} (further ones for {LOG_EVERY:g} s only counted)")

    def take_output(self) -> list[Output]:
        out, self.out = self.out, []
        return out

    def take_logs(self) -> list[str]:
        logs, self.logs = self.logs, []
        return logs
