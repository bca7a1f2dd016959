"""The bench's own checks: the correctness tally, the split of messages over pairs, and the
histogram against HdrHistogram (when the `bench` extra is installed)."""

from __future__ import annotations

import random

import pytest

from zmqswarm.bench.hist import Histogram
from zmqswarm.bench.spec import HEADER, Spec
from zmqswarm.bench.worker import Tally


def payload(sender: int, recipient: int, seq: int, due: int = 0) -> bytes:
    return HEADER.pack(sender, recipient, seq, due) + b"x" * 48


def test_pairs_share_every_message() -> None:
    spec = Spec(system="x", senders=10, recipients=50, count=1003)
    for s in range(10):
        assert sum(spec.expected(s, r) for r in range(50)) == 1003
    assert spec.total() == 10 * 1003
    spec = Spec(system="x", rate=5000, seconds=2, senders=2)
    assert spec.per_sender() == 5000
    fan = Spec(system="x", recipients=50, count=200, fanout=True)
    assert fan.expected(0, 49) == 200 and fan.total() == 50 * 200


def test_tally_counts_duplicates_disorder_and_strays() -> None:
    spec = Spec(system="x", senders=2, recipients=1, count=3)
    tally = Tally(spec, 0, since_ns=0)
    for p in (payload(0, 0, 0), payload(0, 0, 2), payload(0, 0, 1), payload(0, 0, 1)):
        tally.add(p, now=1)
    tally.add(payload(1, 0, 7), now=1)  # beyond what sender 1 sends
    tally.add(payload(1, 1, 0), now=1)  # for another recipient
    assert (tally.unique, tally.duplicates, tally.out_of_order, tally.foreign) == (3, 1, 2, 2)
    assert tally.total == 6 and tally.latencies == []  # closed loop: no latencies


def test_tally_keeps_latencies_after_the_warmup() -> None:
    spec = Spec(system="x", rate=1000, seconds=1)
    tally = Tally(spec, 0, since_ns=1_000)
    tally.add(payload(0, 0, 0, due=500), now=2_000)  # due in the warm-up
    tally.add(payload(0, 0, 1, due=1_500), now=2_000)
    assert tally.latencies == [500]


def test_histogram_matches_hdrhistogram() -> None:
    """Kept instead of the hdrhistogram package because it reads the same: every percentile
    within 1% of HdrHistogram's at 3 significant digits, on a long-tailed sample."""
    hdrh = pytest.importorskip("hdrh.histogram")
    rng = random.Random(7)
    ours, theirs = Histogram(), hdrh.HdrHistogram(1, 60_000_000_000, 3)
    for _ in range(200_000):
        ns = int(rng.lognormvariate(12.5, 0.8)) + 50_000
        ours.record(ns)
        theirs.record_value(ns)
    for p in (50, 90, 99, 99.9, 99.99):
        want = theirs.get_value_at_percentile(p)
        assert abs(ours.percentile(p) - want) <= 0.011 * want, p
