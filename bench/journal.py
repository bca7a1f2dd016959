"""`python -m bench.journal`: what the router's journal costs, journal on against off in the
same run (this machine is shared and noisy: read the ratios).

(a) throughput: Client -> zs router -> Client, 64 B, ``send()`` one at a time, as
    bench.throughput measures it (the sink's rate, every message receipted before the end).
(b) receipt latency: open loop at a fixed offered rate (5k msg/s by default), from the time
    each message was due to the moment its ticket reads accepted (the receipt, which with the
    journal waits for the fsync). The sender waits for its schedule inside ``Client.poll``, so
    a receipt is seen when it arrives, not at the next send.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections import deque
from typing import Any

import bench.throughput
from bench._hist import Histogram
from bench._procs import median, write_json, zs_path


def throughput(n: int, data_dir: str | None) -> float:
    return bench.throughput.zmqswarm(64, n, 1, journal=data_dir)


def _drain(url: str, n: int, q: Any) -> None:
    """A recipient that takes everything (latency here is the sender's receipt)."""
    from zmqswarm.client.sync import Client

    with Client("sink", router=url) as client:
        q.put("ready")
        for _ in range(n):
            client.recv(timeout=30)
        q.put("done")


def receipt_latency(rate: int, seconds: float, data_dir: str | None) -> dict[str, float]:
    from zmqswarm.client.sync import Client

    n = int(rate * seconds)
    hist = Histogram()
    warmup = rate // 2  # the first half second: sessions and caches settle
    with zs_path(n + 1, _drain, data_dir) as (url, q, _):
        client = Client("source", router=url)
        client.send("sink", b"x" * 64).wait("accepted")  # session up before the clock
        interval = 1_000_000_000 // rate
        start = time.monotonic_ns() + 50_000_000
        waiting: deque[tuple[int, Any, int]] = deque()  # (due, ticket, index)
        i = 0
        while i < n or waiting:
            now = time.monotonic_ns()
            while i < n and start + i * interval <= now:
                waiting.append((start + i * interval, client.send("sink", b"x" * 64), i))
                i += 1
            while waiting and waiting[0][1].state != "pending":
                due, _, index = waiting.popleft()
                if index >= warmup:
                    hist.record(time.monotonic_ns() - due)
            next_due = start + i * interval if i < n else now + 1_000_000
            client.poll(max(0, next_due - time.monotonic_ns()) / 1e9)
        assert q.get(timeout=60) == "done"
        client.close(timeout=10)
    return {f"p{p}": hist.percentile(p) / 1000 for p in (50, 90, 99, 99.9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000, help="messages per throughput run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=int, default=5000, help="offered msg/s for latency")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", default="bench/results/journal.json")
    args = ap.parse_args()
    tp: dict[str, list[float]] = {"off": [], "on": []}
    lat: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
    for run in range(args.runs):
        for mode in ("on", "off") if run % 2 else ("off", "on"):  # ABBA against drift
            data = tempfile.mkdtemp(prefix="zs-bench-journal-") if mode == "on" else None
            try:
                tp[mode].append(throughput(args.n, data))
                lat[mode].append(receipt_latency(args.rate, args.seconds, data))
            finally:
                if data:
                    shutil.rmtree(data, ignore_errors=True)
    off, on = median(tp["off"]), median(tp["on"])
    print(f"throughput, 64 B send(), median of {args.runs}:")
    print(f"  journal off {off:>10,.0f} msg/s   runs {' / '.join(f'{r:,.0f}' for r in tp['off'])}")
    print(f"  journal on  {on:>10,.0f} msg/s   runs {' / '.join(f'{r:,.0f}' for r in tp['on'])}")
    print(f"  on / off    {on / off:>10.1%}   (target >= 50%)")
    print(f"receipt latency at {args.rate:,} msg/s offered, open loop, us (median of runs):")
    print(f"  {'':<12}{'p50':>8}{'p90':>8}{'p99':>8}{'p99.9':>8}")
    rows: dict[str, Any] = {"throughput": tp, "ratio": on / off, "latency": lat}
    for mode in ("off", "on"):
        med = {k: median([r[k] for r in lat[mode]]) for k in lat[mode][0]}
        rows[f"latency_median_{mode}"] = med
        cells = "".join(f"{med[k]:>8.0f}" for k in ("p50", "p90", "p99", "p99.9"))
        print(f"  journal {mode:<4}{cells}")
    print("  target: journal on p99 <= 5000 us")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
