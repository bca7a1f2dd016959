"""`python -m bench.peers.report [JSON]`: a `python -m bench.peers` result as the markdown
tables of docs/benchmarks.md ("Against peers"), so that a new measurement replaces the
record whole instead of being copied by hand."""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from bench.peers.__main__ import SYSTEMS


def _k(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:,.0f}"


def _cpu(row: dict[str, Any]) -> str:
    roles = row["cpu_by_role"]
    parts = [roles["senders"], roles["broker"], roles["recipients"]]
    idle = f" + {roles['idle']:.1f}" if roles.get("idle") else ""
    return f"{row['cpu_us_per_msg']:.1f} ({' + '.join(f'{p:.1f}' for p in parts)}{idle})"


def closed_loop(cells: dict[str, Any]) -> str:
    out = []
    for cell, systems in cells.items():
        redis = systems.get("redis", {}).get("msgs_per_s", math.nan)
        js = systems.get("jetstream:file", {}).get("msgs_per_s", math.nan)
        out.append(f"\n{cell}:\n")
        out.append(
            "| system | msg/s, median | runs | × Redis | × JetStream file "
            "| CPU µs/msg (senders + broker + recipients) | checks |"
        )
        out.append("|---|---:|---|---:|---:|---|---|")
        for key in SYSTEMS:
            row = systems.get(key)
            if row is None:
                continue
            m = row["msgs_per_s"]
            runs = " / ".join(f"{v / 1000:.1f}k" for v in row["runs"])
            out.append(
                f"| {row['label']} | {_k(m)} | {runs} | {m / redis:.2f} | {m / js:.2f} "
                f"| {_cpu(row)} | {row['checks']} |"
            )
    return "\n".join(out)


def latency(cells: dict[str, Any]) -> str:
    out = [
        "| system | offered msg/s | p50 | p90 | p99 | p99.9 | p99 × Redis's "
        "| CPU µs/msg | checks |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for key in SYSTEMS:
        for cell, systems in cells.items():
            row = systems.get(key)
            if row is None:
                continue
            lat = row["latency_us"]
            redis = systems.get("redis", {}).get("latency_us", {}).get("p99", math.nan)
            ps = " | ".join(_k(lat[p]) for p in ("p50", "p90", "p99", "p99.9"))
            out.append(
                f"| {row['label']} | {cell.split()[0]} | {ps} | {lat['p99'] / redis:.2f} "
                f"| {_cpu(row)} | {row['checks']} |"
            )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("json", nargs="?", default="bench/results/peers.json")
    args = ap.parse_args()
    with open(args.json) as f:
        results = json.load(f)
    m = results["machine"]
    print(f"Command: `{results['command']}`; {m['date']}, commit {m['commit']}, {m['cpu']},")
    print(f"Linux {m['kernel']}, CPython {m['python']}, load average at the end {m['load']}.")
    for workload, cells in results["table"].items():
        print(f"\n### {workload}\n")
        print(latency(cells) if workload == "latency" else closed_loop(cells))
    print("\nTargets (same run):\n")
    for line in results["targets"]:
        print(f"- {line}")
    for key, why in results.get("skipped", {}).items():
        print(f"- skipped {key}: {why}")


if __name__ == "__main__":
    main()
