"""`python -m bench.tmux`: per-command cost through the control-mode gateway against forking
`tmux` for each command, on a private tmux server, in the same run.

Measured commands: `display-message -p` (a trivial query) and `set-buffer` with a 120 B body
(the staging step of a delivery). End-to-end pane delivery comes with `zs agent`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
import uuid

from bench._procs import write_json
from zmqswarm.tmux import ControlClient

BODY = "hello from bench — line with 'quotes', $vars, #{formats} and ; separators " * 1


async def measure(socket: str, n: int) -> dict[str, list[float]]:
    client = ControlClient(socket)
    cmds = {
        "display-message -p": ("display-message", "-p", "x"),
        "set-buffer 120 B": ("set-buffer", "-b", "zs-bench", "--", BODY[:120]),
    }
    out: dict[str, list[float]] = {}
    try:
        await client.command("display-message", "-p", "warm")
        for label, args in cmds.items():
            ctl, fork = [], []
            for _ in range(n):
                t = time.perf_counter()
                await client.command(*args)
                ctl.append(time.perf_counter() - t)
            for _ in range(n):
                t = time.perf_counter()
                await client.run_subprocess(*args)
                fork.append(time.perf_counter() - t)
            out[f"{label} | control"] = ctl
            out[f"{label} | fork"] = fork
    finally:
        await client.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--json", default="bench/results/tmux.json")
    args = ap.parse_args()
    socket = f"zs-bench-{uuid.uuid4().hex[:8]}"
    try:
        results = asyncio.run(measure(socket, args.n))
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    print(f"{'command | path':<34} {'median ms':>10} {'p99 ms':>8}")
    medians = {}
    for label, xs in results.items():
        xs.sort()
        medians[label] = statistics.median(xs)
        print(f"{label:<34} {medians[label] * 1000:>10.3f} {xs[int(len(xs) * 0.99)] * 1000:>8.3f}")
    for cmd in ("display-message -p", "set-buffer 120 B"):
        ratio = medians[f"{cmd} | fork"] / medians[f"{cmd} | control"]
        print(f"{cmd}: control mode is {ratio:.1f}x cheaper than a fork")
    write_json(args.json, {k: {"median_s": medians[k], "samples": v} for k, v in results.items()})


if __name__ == "__main__":
    main()
