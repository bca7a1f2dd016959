"""`python -m bench.peers`: zmqswarm against NATS JetStream and Redis Streams, and the raw
pyzmq ceiling, side by side in one run, each with the same guarantee (acknowledged publish,
acknowledged consume; the ceiling has none). Every system starts its own broker on loopback
TCP with a temp dir and a free port; a peer that is not installed is skipped, and said so.

Workloads (``--workloads``):

- ``1to1``: one sender, one recipient, closed loop, each ``--sizes`` payload: msg/s.
- ``NtoM``: 10 senders, 50 recipients (each sender round-robin over all), closed loop, 64 B.
- ``fanout``: one sender, every message to each of 50 recipients (observers), 64 B:
  deliveries a second. Redis and JetStream fan out in the broker (a consumer group or a
  consumer each on one stream); zmqswarm and raw pyzmq have no multicast with receipts and
  acks, so their sender sends 50 copies.
- ``idle``: ``1to1`` at 64 B with 1,000 idle peers connected throughout.
- ``latency``: one sender, one recipient, open loop at each ``--rates`` msg/s offered (64 B):
  every message stamped with the time it was due, percentiles of due -> handed over.

Every run checks every message (once, in order per pair) and counts CPU in every process,
the broker's included: both are in the table and the JSON. Systems run in turn within each
run, their order flipping run by run (this machine is shared and noisy: read the ratios
within a run, and the medians of runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zmqswarm.bench.spec import Spec
from zmqswarm.bench.workload import run

# (module, variant) of every system, and the producer window and consumer batch it runs
# with: the best of one sweep (--sweep) on this machine, 1to1 64 B.
SYSTEMS: dict[str, tuple[str, str]] = {
    "zmqswarm": ("bench.peers.zmqswarm", ""),
    "zmqswarm:journal": ("bench.peers.zmqswarm", "journal"),
    "zmqswarm:batch": ("bench.peers.zmqswarm", "batch"),
    "zmqswarm:journal+batch": ("bench.peers.zmqswarm", "journal+batch"),
    "raw": ("bench.peers.raw", ""),
    "raw:receipts": ("bench.peers.raw", "receipts"),
    "redis": ("bench.peers.redis_streams", ""),
    "redis:everysec": ("bench.peers.redis_streams", "everysec"),
    "jetstream:file": ("bench.peers.jetstream", "file"),
    "jetstream:memory": ("bench.peers.jetstream", "memory"),
}
TUNED: dict[str, tuple[int, int]] = {
    "bench.peers.zmqswarm": (1024, 256),
    "bench.peers.raw": (256, 8192),  # raw with receipts; its recipient takes 256 at most
    "bench.peers.redis_streams": (16384, 8192),  # a pipeline of 64 MiB at most (below)
    "bench.peers.jetstream": (1024, 1024),
}
SWEEP_WINDOWS = (64, 256, 1024, 4096, 16384)
SWEEP_BATCHES = (16, 64, 256, 1024, 8192)
MAX_BYTES = 512 << 20  # payload bytes a closed-loop run sends at most (brokers keep them)


def _spec(key: str, **kw: Any) -> Spec:
    module, variant = SYSTEMS[key]
    window, batch = TUNED[module]
    return Spec(system=module, variant=variant, **({"window": window, "batch": batch} | kw))


def _skipped(keys: list[str]) -> dict[str, str]:
    why: dict[str, str] = {}
    for key in keys:
        check = getattr(importlib.import_module(SYSTEMS[key][0]), "available", None)
        reason = check() if check else None
        if reason:
            why[key] = reason
    return why


def _cells(args: argparse.Namespace) -> list[tuple[str, str, dict[str, Any]]]:
    """(workload, cell label, Spec fields) of everything to measure, in order."""
    cells: list[tuple[str, str, dict[str, Any]]] = []
    for workload in args.workloads:
        if workload == "1to1":
            for size in args.sizes:
                count = min(args.count, MAX_BYTES // size)
                cells.append(("1to1", f"{size} B", {"size": size, "count": count}))
        elif workload == "NtoM":
            count = max(1, args.count // 10)
            fields = {"senders": 10, "recipients": 50, "count": count}
            cells.append(("NtoM", "64 B", fields))
        elif workload == "fanout":
            fields = {"recipients": 50, "fanout": True, "count": max(1, args.count // 50)}
            cells.append(("fanout", "64 B", fields))
        elif workload == "idle":
            cells.append(("idle", "64 B", {"count": args.count, "idle": args.idle}))
        elif workload == "latency":
            for rate in args.rates:
                fields = {"rate": float(rate), "seconds": args.seconds}
                cells.append(("latency", f"{rate} msg/s", fields))
    return cells


def _machine() -> dict[str, str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": f"{os.cpu_count()} x {cpu}",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "load": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }


def _fmt_rate(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:,.0f}"


def _median(rows: list[dict[str, Any]], key: str) -> float:
    vals = [r[key] for r in rows if not math.isnan(r[key])]
    return statistics.median(vals) if vals else math.nan


def _checks(rows: list[dict[str, Any]]) -> str:
    """Every run's correctness counts, summed: delivered/expected, duplicates, out of order,
    unacknowledged publishes; "ok" only if every run had every message once, in order."""
    exp = sum(r["expected"] for r in rows)
    got = sum(r["delivered"] for r in rows)
    dup = sum(r["duplicates"] for r in rows)
    ooo = sum(r["out_of_order"] for r in rows)
    una = sum(r["unacked"] for r in rows)
    flag = "ok" if all(r["ok"] for r in rows) else "FAILED"
    return f"{flag} {got:,}/{exp:,} dup {dup} ooo {ooo} unacked {una}"


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Medians per (workload, cell, system), as the table and the docs show them."""
    table: dict[str, Any] = {}
    for workload, cells in results["runs"].items():
        for cell, systems in cells.items():
            for key, rows in systems.items():
                row: dict[str, Any] = {
                    "msgs_per_s": _median(rows, "msgs_per_s"),
                    "runs": [r["msgs_per_s"] for r in rows],
                    "cpu_us_per_msg": _median(rows, "cpu_us_per_msg"),
                    "cpu_by_role": {
                        k: statistics.median(r["cpu_us_per_msg_by_role"][k] for r in rows)
                        for k in rows[0]["cpu_us_per_msg_by_role"]
                    },
                    "checks": _checks(rows),
                    "ok": all(r["ok"] for r in rows),
                    "label": rows[0]["system"],
                    "version": rows[0]["version"],
                }
                if workload == "latency":
                    row["latency_us"] = {
                        p: statistics.median(r["latency_us"][p] for r in rows)
                        for p in rows[0]["latency_us"]
                    }
                table.setdefault(workload, {}).setdefault(cell, {})[key] = row
    return table


def print_tables(table: dict[str, Any]) -> None:
    for workload, cells in table.items():
        for cell, systems in cells.items():
            print(f"\n== {workload}, {cell} (medians of runs)")
            if workload == "latency":
                print(
                    f"{'system':<26}{'p50':>8}{'p90':>8}{'p99':>8}{'p99.9':>9}{'CPU us/msg':>12}"
                    "  checks"
                )
                for row in systems.values():
                    lat = row["latency_us"]
                    cells_ = "".join(f"{lat[p]:>8.0f}" for p in ("p50", "p90", "p99"))
                    print(
                        f"{row['label']:<26}{cells_}{lat['p99.9']:>9.0f}"
                        f"{row['cpu_us_per_msg']:>12.1f}  {row['checks']}"
                    )
                continue
            print(f"{'system':<26}{'msg/s':>10}{'CPU us/msg':>12}  {'runs':<28}checks")
            for row in systems.values():
                runs = " / ".join(f"{v / 1000:.1f}k" for v in row["runs"])
                print(
                    f"{row['label']:<26}{_fmt_rate(row['msgs_per_s']):>10}"
                    f"{row['cpu_us_per_msg']:>12.1f}  {runs:<28}{row['checks']}"
                )


def targets(table: dict[str, Any]) -> list[str]:
    """The issue's targets, each against the peers' figures of the same run, for ``send()``
    a message and for ``batch()`` (the pipelined variant), whichever of them ran."""
    out: list[str] = []

    def rate(workload: str, cell: str, key: str) -> float:
        row = table.get(workload, {}).get(cell, {}).get(key)
        return float(row["msgs_per_s"]) if row else math.nan

    def judge(what: str, figures: dict[str, float], ok: Callable[[float], bool], unit: str) -> None:
        figures = {k: v for k, v in figures.items() if not math.isnan(v)}  # measured only
        if not figures:
            return
        said = ", ".join(f"{label} {v:.2f}{unit}" for label, v in figures.items())
        if ok(figures.get("send()", math.nan)):
            verdict = "met"
        elif ok(figures.get("batch", math.nan)):
            verdict = "met with batch() only"
        else:
            verdict = "MISSED"
        out.append(f"{what}: {said}: {verdict}")

    for workload, cell in (("1to1", "64 B"), ("NtoM", "64 B")):
        for want, journal, peer, key in (
            (1.5, "", "Redis", "redis"),
            (6.0, "", "JetStream file", "jetstream:file"),
            (1.0, "journal", "Redis everysec (journal on)", "redis:everysec"),
            (3.0, "journal", "JetStream file (journal on)", "jetstream:file"),
        ):
            plain = f"zmqswarm:{journal}" if journal else "zmqswarm"
            batched = f"zmqswarm:{journal}+batch" if journal else "zmqswarm:batch"
            theirs = rate(workload, cell, key)
            figures = {
                "send()": rate(workload, cell, plain) / theirs,
                "batch": rate(workload, cell, batched) / theirs,
            }
            strict = want == 1.0  # "above Redis": more than, not as much as

            def ok(r: float, want: float = want, strict: bool = strict) -> bool:
                return r > want if strict else r >= want

            sign = ">" if strict else ">="
            judge(f"{workload} x {peer} (target {sign} {want}x)", figures, ok, "x")
    lat = table.get("latency", {}).get("5000 msg/s", {})
    if "redis" in lat:
        redis = lat["redis"]["latency_us"]["p99"]
        figures = {
            label: lat[k]["latency_us"]["p99"] / redis if k in lat else math.nan
            for label, k in (("send()", "zmqswarm"), ("batch", "zmqswarm:batch"))
        }
        judge("p99 at 5k msg/s x Redis's (target <= 0.7x)", figures, lambda r: r <= 0.7, "x")
    cell = table.get("1to1", {}).get("64 B", {})
    figures = {
        label: cell[k]["cpu_us_per_msg"] if k in cell else math.nan
        for label, k in (("send()", "zmqswarm"), ("batch", "zmqswarm:batch"))
    }
    judge("CPU per message, 1to1 64 B (target <= 15 us)", figures, lambda c: c <= 15, " us")
    return out


def sweep(keys: list[str], count: int) -> None:
    """Each peer's producer window and consumer batch, once, 1to1 64 B: prints the best."""
    for key in keys:
        best: tuple[float, int, int] = (0.0, 0, 0)
        for window in SWEEP_WINDOWS:
            for batch in SWEEP_BATCHES:
                spec = dataclasses.replace(_spec(key, count=count), window=window, batch=batch)
                r = run(spec)
                print(f"{key:<20} window {window:>5} batch {batch:>5}: {r['msgs_per_s']:>10,.0f}")
                best = max(best, (r["msgs_per_s"], window, batch))
        print(f"{key}: best window {best[1]}, batch {best[2]} ({best[0]:,.0f} msg/s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--workloads", default="1to1,NtoM,fanout,idle,latency", type=lambda s: s.split(",")
    )
    ap.add_argument("--systems", default=",".join(SYSTEMS), type=lambda s: s.split(","))
    ap.add_argument(
        "--sizes", default="64,1024,65536", type=lambda s: [int(v) for v in s.split(",")]
    )
    ap.add_argument(
        "--rates", default="1000,5000,10000", type=lambda s: [int(v) for v in s.split(",")]
    )
    ap.add_argument("--count", type=int, default=100_000, help="messages a closed-loop run")
    ap.add_argument("--seconds", type=float, default=5.0, help="an open-loop run")
    ap.add_argument("--idle", type=int, default=1000, help="idle peers in the idle workload")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", default="bench/results/peers.json")
    ap.add_argument("--plots", default="", help="write PNG plots into this directory")
    ap.add_argument("--sweep", action="store_true", help="tune each peer's window and batch")
    args = ap.parse_args()
    unknown = [k for k in args.systems if k not in SYSTEMS]
    if unknown:
        ap.error(f"unknown systems {unknown}; known: {', '.join(SYSTEMS)}")
    skipped = _skipped(args.systems)
    for key, why in skipped.items():
        print(f"skipped {key}: {why}")
    keys = [k for k in args.systems if k not in skipped]
    if args.sweep:
        sweep(keys, args.count)
        return
    results: dict[str, Any] = {"machine": _machine(), "skipped": skipped, "runs": {}}
    results["command"] = "python -m bench.peers " + " ".join(
        f"--{k} {','.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in vars(args).items()
        if v not in ("", False)
    )
    for workload, cell, fields in _cells(args):
        rows: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        for n in range(args.runs):
            for key in reversed(keys) if n % 2 else keys:
                r = run(_spec(key, **fields))
                rows[key].append(r)
                what = r["latency_us"].get("p99", r["msgs_per_s"])
                print(
                    f"  {workload} {cell} run {n + 1} {key}: {what:,.0f} ok={r['ok']}", flush=True
                )
        results["runs"].setdefault(workload, {})[cell] = rows
    table = summarize(results)
    results["table"] = table
    print_tables(table)
    results["targets"] = targets(table)
    print("\n" + "\n".join(results["targets"]))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    print(f"\nJSON: {args.json}")
    if args.plots:
        from bench.peers.plots import plot

        for path in plot(results, Path(args.plots)):
            print(f"plot: {path}")


if __name__ == "__main__":
    main()
