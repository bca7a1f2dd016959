"""A small log-bucketed latency histogram (HdrHistogram's idea, 2 significant digits)."""

from __future__ import annotations

import math


class Histogram:
    """Counts values (ns) in buckets 1% wide; percentiles are read off the buckets."""

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.total = 0
        self.max = 0

    def record(self, ns: int) -> None:
        key = int(math.log(max(ns, 1), 1.01))
        self.counts[key] = self.counts.get(key, 0) + 1
        self.total += 1
        self.max = max(self.max, ns)

    def percentile(self, p: float) -> float:
        """The value (ns) at percentile ``p`` (0-100): the upper edge of its bucket."""
        want = math.ceil(self.total * p / 100)
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= want:
                return min(1.01 ** (key + 1), float(self.max))
        return float(self.max)
