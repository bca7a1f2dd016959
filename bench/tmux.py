"""`python -m bench.tmux`: per-command cost through the control-mode gateway against forking
`tmux` for each command, on a private tmux server, in the same run.

Measured commands: `display-message -p` (a trivial query) and `set-buffer` with a 120 B body
(the staging step of a delivery).

Then end to end, for 1, 10 and 50 panes running bash, all served by one `zs agent --tagged`
process through a `zs router`: each round sends one message to every pane at once (every pane
idle: rounds are 0.6 s apart, longer than the shell profile's quiet period) and takes, per
message, send -> Delivered notice at the sender (the agent acks after its Enter) and the
agent's own receipt -> submitted (its ack note: wait + paste + submit).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from bench._procs import CTX, run_zs_router, wait_path, write_json
from zmqswarm.agent.gateway import ControlClient

BODY = "hello from bench — line with 'quotes', $vars, #{formats} and ; separators " * 1


async def measure(socket: str, n: int) -> dict[str, list[float]]:
    client = ControlClient(socket)
    await client.run_subprocess("new-session", "-d", "-s", "home")  # it never starts a server
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


NOTE = re.compile(r"^submitted wait=(\d+) paste=(\d+) submit=(\d+) ")


def start_panes(socket: str, n: int) -> list[str]:
    tmux = ["tmux", "-L", socket]
    shell = "env PS1='zs$ ' bash --norc --noprofile"
    subprocess.run([*tmux, "new-session", "-d", "-s", "bench", "-x", "150", shell], check=True)
    for _ in range(n - 1):
        subprocess.run([*tmux, "new-window", "-d", "-t", "bench", shell], check=True)
    panes = subprocess.run(
        [*tmux, "list-panes", "-s", "-t", "bench", "-F", "#{pane_id}"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    for i, pane in enumerate(panes):
        for option, value in (("@zs_agent", f"pane-{i}"), ("@zs_profile", "shell")):
            subprocess.run([*tmux, "set-option", "-p", "-t", pane, option, value], check=True)
    return panes


async def rounds(url: str, names: list[str], count: int) -> tuple[list[float], list[float]]:
    """``count`` rounds of one message to every name at once: (send -> delivered, receipt ->
    submitted) in seconds."""
    from zmqswarm.client.aio import AsyncClient

    e2e: list[float] = []
    agent: list[float] = []
    async with AsyncClient("bench", router=url) as client:
        loop = asyncio.get_running_loop()

        async def one(name: str, text: bytes, record: bool) -> None:
            start = loop.time()
            sent = await client.send(name, text, notify=True)
            ticket = await sent.wait("delivered", timeout=60)
            if record:
                e2e.append(loop.time() - start)
                m = NOTE.match(ticket.note)
                assert m, ticket.note
                agent.append(sum(int(g) for g in m.groups()) / 1000)

        for r in range(count + 1):  # round 0 warms up: sessions, the agent's pane snapshot
            await asyncio.gather(*(one(n, f": round {r}".encode(), r > 0) for n in names))
            await asyncio.sleep(0.6)  # let every pane go idle again (bench pacing, not a test)
    return e2e, agent


def end_to_end(n_panes: int, count: int) -> dict[str, float]:
    socket = f"zs-bench-{uuid.uuid4().hex[:8]}"
    tmp = tempfile.mkdtemp(prefix="zs-bench-")
    url = f"ipc://{tmp}/router"
    router = CTX.Process(target=run_zs_router, args=(url,))
    router.start()
    agent = None
    try:
        wait_path(url)
        panes = start_panes(socket, n_panes)
        agent = subprocess.Popen(
            [sys.executable, "-m", "zmqswarm.cli", "agent", "--tagged", "-L", socket,
             "--router", url, "--journal", f"{tmp}/agent.journal"],
        )  # fmt: skip
        e2e, by_agent = asyncio.run(rounds(url, [f"pane-{i}" for i in range(len(panes))], count))
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        router.terminate()
        router.join(10)
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    e2e.sort()
    by_agent.sort()
    return {
        "panes": n_panes,
        "messages": len(e2e),
        "send_to_delivered_p50_ms": statistics.median(e2e) * 1000,
        "send_to_delivered_p99_ms": e2e[int(len(e2e) * 0.99)] * 1000,
        "receipt_to_submitted_p50_ms": statistics.median(by_agent) * 1000,
        "receipt_to_submitted_p99_ms": by_agent[int(len(by_agent) * 0.99)] * 1000,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=10, help="end-to-end rounds per pane count")
    ap.add_argument("--panes", default="1,10,50", help="pane counts for the end-to-end part")
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
    rows = [end_to_end(int(n), args.rounds) for n in args.panes.split(",")]
    print(f"\nend to end, idle bash panes, {args.rounds} rounds, ms:")
    print(f"{'panes':>6} {'msgs':>6} {'send->delivered p50':>20} {'p99':>8}"
          f" {'receipt->submitted p50':>23} {'p99':>8}")  # fmt: skip
    for row in rows:
        print(
            f"{row['panes']:>6} {row['messages']:>6} {row['send_to_delivered_p50_ms']:>20.1f}"
            f" {row['send_to_delivered_p99_ms']:>8.1f} {row['receipt_to_submitted_p50_ms']:>23.1f}"
            f" {row['receipt_to_submitted_p99_ms']:>8.1f}"
        )
    write_json(
        args.json,
        {
            "commands": {k: {"median_s": medians[k], "samples": v} for k, v in results.items()},
            "end_to_end": rows,
        },
    )


if __name__ == "__main__":
    main()
