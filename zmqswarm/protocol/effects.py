"""What the router's core wants done, collected for its driver: frames to send, counters to
publish, and log lines to write. The core decides; it never sends or logs itself."""

from __future__ import annotations

from .codec import encode
from .frames import Code, Nack
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
    "resumed",  # Hellos from a sender incarnation already known: reconnects
    "disconnected",  # sessions ended because their connection was gone
)


class Effects:
    def __init__(self) -> None:
        self.out: list[Output] = []
        self.stats: dict[str, int] = dict.fromkeys(STATS, 0)
        self.logs: list[str] = []
        self._logged: dict[str, float] = {}

    def send(self, identity: bytes, parts: list[bytes], first_dseq: int = 0) -> None:
        """One multipart message to ``identity``; ``first_dseq`` names a Deliver's first
        delivery, for ``undeliver`` should the driver fail to send it."""
        self.out.append((identity, parts, first_dseq))

    def nack(self, identity: bytes, seq: int, code: Code, reason: str, retry_ms: int = 0) -> None:
        key = f"nack_{code.name.lower()}"
        self.stats[key] = self.stats.get(key, 0) + 1
        self.send(identity, [encode(Nack(seq, int(code), reason, retry_ms))])

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
