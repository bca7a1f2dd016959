"""`python -m bench.monitor`: how long `zs monitor` takes to draw a frame, by peers known.

A frame is what the live view does every 0.25 s at most: ``render(state)`` and rich turning it
into the text a terminal gets (colours on), 80 columns by 40 lines (so 30 names shown). The
state has every peer online and a few with mail, as under a load. Target: ≤ 20 ms at 1,000.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import TYPE_CHECKING

from bench._procs import write_json

if TYPE_CHECKING:
    from zmqswarm.protocol import WatchedState

URL = "ipc:///run/user/1000/zmqswarm-1000/router"


def crowded(peers: int) -> WatchedState:
    from zmqswarm.protocol import PeerItem, Snapshot, Update, WatchedState

    rows = [PeerItem(f"agent-{i:05d}", True, 7, i, 0, 0, "live %3") for i in range(peers)]
    for i in range(0, peers, max(1, peers // 10)):  # a tenth... a few with mail
        rows[i] = PeerItem(rows[i].name, True, 7, 0, i % 50, 64, "live %9", waiting_ms=1500)
    state = WatchedState()
    stats = {"accepted": 10_000_000, "delivered": 9_999_000, "acked": 9_998_000}
    state.apply_snapshot(Snapshot(0x1F, 3, 12_000, [], rows, stats, heartbeat_ms=1000))
    later = {key: value + 2000 for key, value in stats.items()}
    latency = {"n": 2000, "p50": 2304, "p90": 7168, "p99": 14336, "max": 40960}
    state.apply(Update(0x1F, 4, 13_000, [], [], later, latency))
    return state


def frame_ms(peers: int, frames: int) -> list[float]:
    from rich.console import Console

    from zmqswarm.observe.monitor import _HEAD_LINES, render

    state = crowded(peers)
    console = Console(width=80, height=40, color_system="standard", force_terminal=True)
    rows = console.size.height - _HEAD_LINES
    took = []
    for _ in range(frames):
        start = time.perf_counter()
        with console.capture():
            console.print(render(state, url=URL, rows=rows))
        took.append((time.perf_counter() - start) * 1000)
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--json", default="bench/results/monitor.json")
    args = ap.parse_args()
    frame_ms(10, 20)  # warm-up: imports, rich's caches
    print(f"{'peers':>7} {'median ms':>10} {'p99 ms':>8} {'max ms':>8}")
    rows = []
    for peers in (10, 100, 1000, 10_000):
        took = sorted(frame_ms(peers, args.frames))
        p99 = took[int(len(took) * 0.99) - 1]
        median = statistics.median(took)
        print(f"{peers:>7,} {median:>10.2f} {p99:>8.2f} {took[-1]:>8.2f}")
        rows.append({"peers": peers, "median_ms": median, "p99_ms": p99, "max_ms": took[-1]})
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
