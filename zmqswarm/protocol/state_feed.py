"""What observers see, sans-IO: the router's side that turns its state into numbered Updates,
and the observer's side that folds a Snapshot and the Updates after it back into that state.

The router publishes on PUB, where a slow or late subscriber silently misses messages. So
every Update is numbered, each carries whole rows (applying one twice changes nothing), and
an observer that sees a number skipped, or another router incarnation, asks for a Snapshot
again: the ZeroMQ Guide's Clone pattern, without its key-value store.

Publishing costs the router nothing per message: once per ``interval`` it compares the rows
it would show with the ones it last sent, and sends only what changed, or a bare heartbeat
once per ``heartbeat`` so that observers can tell a quiet router from a dead one.
"""

from __future__ import annotations

from collections.abc import Callable

from .query_frames import PeerItem, Snapshot, Update

__all__ = ["LatencyWindow", "StatePublisher", "WatchedState", "upper_edge"]

_BUCKETS = 65 * 8  # 8 a power of two, up to 2**64 µs: a percentile is at most 1/8 over


class LatencyWindow:
    """Accept → ack times of the messages acked since the last Update, in log buckets: one
    ``record`` a message costs a few integer operations, not a sort. Each figure is its
    bucket's upper edge, in µs: never under the truth, at most 1/8 over it."""

    __slots__ = ("_counts", "on_reset")

    def __init__(self) -> None:
        self._counts = [0] * _BUCKETS
        # Told each window's bucket counts as it closes (``zs router --metrics`` keeps a
        # longer view from them): once an Update, never per message.
        self.on_reset: Callable[[list[int]], None] | None = None

    def record(self, seconds: float, weight: int = 1) -> None:
        """One time, or one that stands for ``weight`` (a systematic sample of a batch)."""
        us = int(seconds * 1_000_000) | 1
        top = us.bit_length()  # 2**(top-1) <= us < 2**top; the next 3 bits pick the eighth
        self._counts[top * 8 + ((us << 3 >> (top - 1)) & 7)] += weight

    def summary(self) -> dict[str, int]:
        """``n``, ``p50``, ``p90``, ``p99`` and ``max`` in µs; {} if nothing was recorded."""
        counts = self._counts
        n = sum(counts)
        if not n:
            return {}
        out = {"n": n}
        wanted = [(p, n * p / 100) for p in (50, 90, 99)]
        seen = 0
        for index, count in enumerate(counts):
            seen += count
            while wanted and count and seen >= wanted[0][1]:
                out[f"p{wanted.pop(0)[0]}"] = upper_edge(index)
        out["max"] = upper_edge(max(i for i, count in enumerate(counts) if count))
        return out

    def reset(self) -> None:
        if self.on_reset is not None:
            self.on_reset(self._counts)
        self._counts = [0] * _BUCKETS


def upper_edge(index: int) -> int:
    """The upper edge, in µs, of the bucket at ``index`` of a LatencyWindow's counts."""
    top, eighth = divmod(index, 8)
    return (8 + eighth + 1) << (top - 1) >> 3


def _visible(row: PeerItem) -> tuple[bool, int, int, int, str]:
    """What makes a row worth re-sending: everything but ``idle_ms`` and ``waiting_ms``,
    which move every ms."""
    return row.online, row.epoch, row.queued, row.inflight, row.state


class StatePublisher:
    """The router's half: numbered Updates from its rows and counters, debounced."""

    def __init__(
        self, router_epoch: int, started: float, interval: float, heartbeat: float
    ) -> None:
        self.router_epoch = router_epoch
        self.started = started
        self.interval = interval
        self.heartbeat = heartbeat
        self.seq = 0  # the last Update made
        self.next_at = started  # when update() next looks
        self._sent_at = started
        self._rows: dict[str, tuple[bool, int, int, int, str]] = {}
        self._stats: dict[str, int] = {}

    def _ms(self, now: float) -> int:
        return int((now - self.started) * 1000)

    def snapshot(
        self,
        rows: list[PeerItem],
        stats: dict[str, int],
        publish: list[str],
        now: float,
        latency: LatencyWindow | None = None,
    ) -> tuple[Snapshot, Update | None]:
        """The state now, as of the last Update, and the Update to publish first if the state
        moved since then. A Snapshot is always of a published state: were it ahead of the
        Updates, a row that changed and changed back before the next Update would never be
        sent again, and its observer would keep the middle value."""
        catch_up = self.update(rows, stats, now, latency, force=True)
        snap = Snapshot(
            self.router_epoch,
            self.seq,
            self._ms(now),
            publish,
            rows,
            stats,
            int(self.heartbeat * 1000),
        )
        return snap, catch_up

    def update(
        self,
        rows: list[PeerItem],
        stats: dict[str, int],
        now: float,
        latency: LatencyWindow | None = None,
        force: bool = False,
    ) -> Update | None:
        """The next Update if one is due and something changed, or a heartbeat is due;
        ``force``: now, if anything changed. An Update takes ``latency``'s figures and
        empties it."""
        if now < self.next_at and not force:
            return None
        if not force:
            self.next_at = now + self.interval
        current = {row.name: row for row in rows}
        changed = [row for name, row in current.items() if self._rows.get(name) != _visible(row)]
        gone = [name for name in self._rows if name not in current]
        if not changed and not gone and stats == self._stats:
            if force or now - self._sent_at < self.heartbeat:
                return None
        self._rows = {name: _visible(row) for name, row in current.items()}
        self._stats = dict(stats)
        self._sent_at = now
        self.seq += 1
        figures = {}
        if latency is not None:
            figures = latency.summary()
            latency.reset()
        ms = self._ms(now)
        return Update(self.router_epoch, self.seq, ms, changed, gone, dict(stats), figures)


class WatchedState:
    """The observer's half: the router's rows and counters as of ``seq``, kept by folding
    Updates into a Snapshot. ``apply`` says False when it cannot: ask for a Snapshot."""

    def __init__(self) -> None:
        self.router_epoch = 0
        self.seq = -1  # no Snapshot yet: every Update is refused
        self.at_ms = 0
        self.publish: list[str] = []
        self.peers: dict[str, PeerItem] = {}
        self.stats: dict[str, int] = {}
        self.rates: dict[str, float] = {}  # per second, between the last two counts
        self.latency: dict[str, int] = {}  # accept → ack, µs, over the last Update's span
        self.heartbeat = 1.0  # seconds the router may stay silent while it lives
        self.resyncs = 0  # Snapshots taken after the first: gaps and router restarts

    @property
    def synced(self) -> bool:
        return self.seq >= 0

    def apply_snapshot(self, snap: Snapshot) -> None:
        if self.router_epoch and snap.publish:  # not the first; nor polling a silent router
            self.resyncs += 1
        if snap.router_epoch != self.router_epoch:
            self.rates = {}  # counters restart with the router
        else:
            self._rate(snap.at_ms, snap.stats)
        self.router_epoch = snap.router_epoch
        self.seq = snap.seq
        self.at_ms = snap.at_ms
        self.publish = list(snap.publish)
        self.heartbeat = snap.heartbeat_ms / 1000
        self.peers = {row.name: row for row in snap.peers}
        self.stats = dict(snap.stats)

    def apply(self, update: Update) -> bool:
        """Fold ``update`` in. False (and unsynced) if it does not follow on: an Update was
        lost, or another router incarnation sent it. Older Updates are ignored (True)."""
        if not self.synced or update.router_epoch != self.router_epoch:
            self.lose_sync()
            return False
        if update.seq <= self.seq:
            return True  # from before the Snapshot
        if update.seq != self.seq + 1:
            self.lose_sync()
            return False
        self._rate(update.at_ms, update.stats)
        self.latency = dict(update.latency_us)
        self.seq = update.seq
        self.at_ms = update.at_ms
        for row in update.peers:
            self.peers[row.name] = row
        for name in update.gone:
            self.peers.pop(name, None)
        self.stats = dict(update.stats)
        return True

    def lose_sync(self) -> None:
        """The router went quiet past its heartbeat: refuse Updates until a new Snapshot."""
        self.seq = -1

    def _rate(self, at_ms: int, stats: dict[str, int]) -> None:
        elapsed = (at_ms - self.at_ms) / 1000
        if elapsed > 0:
            self.rates = {
                key: (value - self.stats.get(key, 0)) / elapsed for key, value in stats.items()
            }
