"""`python -m bench.hostile`: a CURVE router under the bad-input catalogue while it carries a
legitimate load, against the same load without the attack.

A router process (tcp on 127.0.0.1, a free port, CURVE with keys made for the run) carries
``--messages`` messages from ``--pairs`` senders to as many recipients, flat out; each
recipient checks that every message it is handed is the next one its sender sent, and counts
anything else as a hostile delivery. That runs twice, each on a fresh router: without attack,
then under attack by two processes at about ``--rate`` inputs a second in all, for at least
``--attack-seconds``: an authenticated fuzz peer (3/4 of the rate) and an unauthenticated raw
TCP peer (1/4), replaying the catalogue of bench/_catalogue.py. The attack starts a second
before the load and goes on after it.

Reported: per counter, what the attackers injected against what the router counted (its
stats on the state feed, read once everything has closed); hostile deliveries; throughput
under attack against without; the router's RSS at the attack's start, middle and end. JSON
goes to ``--json``.
"""

from __future__ import annotations

import argparse
import ast
import multiprocessing as mp
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench._procs import write_json

CTX = mp.get_context("spawn")
PAYLOAD = 64
MAILBOX_MAX_BYTES = 2 << 20  # the flood's target fills this; legitimate mailboxes stay far below


def keyring(where: Path, pairs: int) -> Path:
    from zmqswarm.keys import new_keys, trust

    names = ["router", "fuzz", "eve"] + [f"{r}{i}" for i in range(pairs) for r in "sr"]
    for name in names:
        new_keys(name, where)
    for name in names[3:] + ["fuzz"]:  # eve's key is not let in
        trust(where / f"{name}.key", where / "allow")
    return where


def keys_of(where: str, name: str) -> Any:
    from zmqswarm.keys import client_keys

    return client_keys(f"{where}/{name}.key_secret", f"{where}/router.key")


def start_router(where: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    config = where / "router.toml"
    config.write_text(f"[router]\nmailbox-max-bytes = {MAILBOX_MAX_BYTES}\n")
    log = where / f"router-{time.monotonic_ns()}.log"
    cmd = [sys.executable, "-m", "zmqswarm.cli", "router", "--no-journal", "--config", str(config)]
    cmd += ["--bind", "tcp://127.0.0.1:*", "--curve-secret", str(where / "router.key_secret")]
    cmd += ["--allow", str(where / "allow")]
    with open(log, "wb") as err:
        proc = subprocess.Popen(cmd, stderr=err)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(r"listening on (tcp://[\d.]+:\d+)", log.read_text())
        if found:
            return proc, found.group(1), log
        if proc.poll() is not None:
            break
        time.sleep(0.02)  # polling interval of a deadline wait
    proc.kill()
    raise RuntimeError(f"the router did not start: {log.read_text()[-2000:]}")


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# -- the legitimate load -----------------------------------------------------------------------


def legit(sender: str, k: int) -> bytes:
    return f"legit:{sender}:{k:09d}:".encode().ljust(PAYLOAD, b".")


def recipient(url: str, where: str, i: int, n: int, q: Any, stop: Any) -> None:
    from zmqswarm.client.sync import Client

    sender, got, bad = f"s{i}", 0, 0
    with Client(f"r{i}", router=url, curve=keys_of(where, f"r{i}")) as client:
        client.wait_ready(20)
        q.put(("ready", i))
        while not stop.is_set():
            try:
                msg = client.recv(timeout=0.2)
            except TimeoutError:
                continue
            if msg.sender == sender and msg.payload == legit(sender, got):
                got += 1
                if got == n:
                    q.put(("done", i, time.perf_counter()))
            else:
                bad += 1  # hostile, out of order, or twice
        q.put(("recipient", i, got, bad))


def sender(url: str, where: str, i: int, n: int, q: Any, go: Any) -> None:
    from zmqswarm.client.sync import Client

    client = Client(f"s{i}", router=url, curve=keys_of(where, f"s{i}"))
    client.wait_ready(20)
    q.put(("ready", i))
    go.wait()
    for k in range(n):
        client.send(f"r{i}", legit(f"s{i}", k))
    q.put(("sender", i, len(client.close(timeout=120))))


# -- the attackers ------------------------------------------------------------------------------


def fuzzer(url: str, where: str, rate: float, q: Any, stop: Any, rounds: int = 0) -> None:
    import zmq

    from bench._catalogue import FuzzPeer, run_cases

    ctx: zmq.Context[Any] = zmq.Context()
    peer = FuzzPeer(ctx, url, keys_of(where, "fuzz"))
    q.put(("ready", "fuzz"))

    def until() -> bool:
        peer.drain()
        return bool(stop.is_set())

    run_cases(peer.cases, peer.tally, rate, until, rounds)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the last answers, for the Nack tally
        peer.drain()
        time.sleep(0.05)  # polling interval of a bounded wait
    peer.close()
    ctx.term()
    q.put(("fuzz", dict(peer.tally.injected), dict(peer.tally.expected), dict(peer.nacks)))


def raw(url: str, where: str, rate: float, q: Any, stop: Any, rounds: int = 0) -> None:
    import zmq

    from bench._catalogue import RawPeer, run_cases

    ctx: zmq.Context[Any] = zmq.Context()
    host, port = url[len("tcp://") :].rsplit(":", 1)
    peer = RawPeer(host, int(port), ctx, url, keys_of(where, "eve"))
    q.put(("ready", "raw"))
    run_cases(peer.cases, peer.tally, rate, stop.is_set, rounds)
    peer.settle(15.0)  # the router closes a silent connection after 5 s
    ctx.term()
    q.put(("raw", dict(peer.tally.injected), dict(peer.tally.expected), peer.unclosed))


# -- one phase -----------------------------------------------------------------------------------


class Inbox:
    """What the bench's processes report, filed by kind as it comes (they interleave)."""

    def __init__(self, q: Any, sample: Any) -> None:
        self.q, self.sample = q, sample
        self.filed: dict[str, list[tuple[Any, ...]]] = {}

    def wait(self, kind: str, n: int, timeout: float) -> list[tuple[Any, ...]]:
        deadline = time.monotonic() + timeout
        while len(self.filed.get(kind, [])) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"waiting for {n} {kind!r}; have {self.filed}")
            try:
                item = self.q.get(timeout=min(left, 0.25))
            except queue.Empty:
                item = None
            self.sample()
            if item is not None:
                self.filed.setdefault(item[0], []).append(item)
        return self.filed[kind][:n]

    def idle(self, seconds: float) -> None:
        """Keep filing (and sampling) for ``seconds``: the attack's own time, not a sync."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                item = self.q.get(timeout=max(0.0, min(end - time.monotonic(), 0.25)))
                self.filed.setdefault(item[0], []).append(item)
            except queue.Empty:
                pass
            self.sample()


def phase(where: Path, args: argparse.Namespace, attack: bool) -> dict[str, Any]:
    from zmqswarm.observe import list_peers, snapshot

    proc, url, log = start_router(where)
    admin = keys_of(str(where), "s0")
    queries = 0
    per = args.messages // args.pairs
    q, stop, go = CTX.Queue(), CTX.Event(), CTX.Event()
    rss: list[tuple[float, int]] = []
    t0 = time.monotonic()

    def sample() -> None:
        if not rss or time.monotonic() - t0 - rss[-1][0] >= 0.25:
            rss.append((time.monotonic() - t0, rss_kib(proc.pid)))

    inbox = Inbox(q, sample)
    procs = [
        CTX.Process(target=recipient, args=(url, str(where), i, per, q, stop))
        for i in range(args.pairs)
    ] + [
        CTX.Process(target=sender, args=(url, str(where), i, per, q, go)) for i in range(args.pairs)
    ]
    for p in procs:
        p.start()
    inbox.wait("ready", 2 * args.pairs, 60)
    attackers = []
    if attack:
        rss.clear()
        t0 = time.monotonic()
        sample()  # the attack's start
        fuzz_rate, raw_rate = args.rate * 3 / 4, args.rate / 4
        attackers = [
            CTX.Process(target=fuzzer, args=(url, str(where), fuzz_rate, q, stop)),
            CTX.Process(target=raw, args=(url, str(where), raw_rate, q, stop)),
        ]
        for p in attackers:
            p.start()
        inbox.wait("ready", 2 * args.pairs + 2, 60)
        inbox.idle(1.0)  # a second of attack before the load
    start = time.perf_counter()
    go.set()
    done = inbox.wait("done", args.pairs, 300)
    seconds = max(d[2] for d in done) - start
    sent = inbox.wait("sender", args.pairs, 300)
    if attack:
        inbox.idle(args.attack_seconds - (time.monotonic() - t0))
    stop.set()
    received = inbox.wait("recipient", args.pairs, 60)
    results = {kind: inbox.wait(kind, 1, 120)[0] for kind in ("fuzz", "raw") if attack}
    sample()
    for p in procs + attackers:
        p.join(30)
    # Every connection closed (ours aside): the counters are final.
    deadline = time.monotonic() + 20
    while True:
        stats = snapshot(url, timeout=5, curve=admin).stats
        queries += 1
        open_now = stats.get("connections_accepted", 0) - stats.get("connections_closed", 0)
        if open_now <= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)  # polling interval of a deadline wait
    peers = list_peers(url, timeout=5, curve=admin)
    queries += 1
    sample()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    final = log.read_text().rsplit("zs router stopped: ", 1)[1].splitlines()[0]

    stats = ast.literal_eval(final)
    queued = {p.name: p.queued for p in peers}
    return {
        "attack": attack,
        "seconds": seconds,
        "msgs_per_s": args.messages / seconds,
        "unreceipted": sum(s[2] for s in sent),
        "received": sum(r[2] for r in received),
        "hostile_delivered": sum(r[3] for r in received),
        "rss_kib": rss,
        "stats": stats,
        "queued": queued,
        "queries": queries,
        "fuzz": results.get("fuzz"),
        "raw": results.get("raw"),
    }


def compare(run: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per counter expression: what the attack must have moved it by, against the router."""
    stats, queued = run["stats"], run["queued"]
    expected: Counter[str] = Counter()
    for side in ("fuzz", "raw"):
        expected.update(run[side][2])
    # What the legitimate side adds: its connections, and the bench's queries.
    legit = 2 * args.pairs + 4 + run["queries"]  # + the fuzz peer's four sockets
    expected["connections_accepted"] += legit
    expected["connections_closed"] += legit
    expected["accepted"] += args.messages
    rows = []
    for expr in sorted(expected):
        total = 0
        for term in expr.split("+"):
            if term.startswith("queued:"):
                pattern = term[len("queued:") :]
                if pattern.endswith("*"):
                    total += sum(n for name, n in queued.items() if name.startswith(pattern[:-1]))
                else:
                    total += queued.get(pattern, 0)
            else:
                total += stats.get(term, 0)
        rows.append({"counter": expr, "injected": expected[expr], "router": total})
    # Every message the router took in is the load's, or the ghosts' and the flood's.
    inside = sum(n for name, n in queued.items() if name.startswith(("ghost.", "flood.")))
    for row in rows:
        if row["counter"] == "accepted":
            row["injected"] += inside
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=10_000, help="the legitimate load")
    ap.add_argument("--pairs", type=int, default=2, help="senders, and as many recipients")
    ap.add_argument("--rate", type=float, default=1000.0, help="hostile inputs a second")
    ap.add_argument("--attack-seconds", type=float, default=12.0)
    ap.add_argument("--json", default="bench/results/hostile.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="zs-bench-hostile-") as tmp:
        where = keyring(Path(tmp), args.pairs)
        calm = phase(where, args, attack=False)
        hostile = phase(where, args, attack=True)
    rows = compare(hostile, args)
    ratio = hostile["msgs_per_s"] / calm["msgs_per_s"]
    rss = hostile["rss_kib"]
    mid = rss[len(rss) // 2]
    injected = sum(hostile["fuzz"][1].values()) + sum(hostile["raw"][1].values())
    attack_rate = injected / max(rss[-1][0], 1e-9)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"legitimate load: {args.messages} messages, {args.pairs} senders ->"
        f" {args.pairs} recipients"
    )
    print(
        f"attack: {injected} hostile inputs ({sum(hostile['fuzz'][1].values())}"
        f" authenticated, {sum(hostile['raw'][1].values())} raw TCP) over {rss[-1][0]:.1f} s"
    )
    print()
    print(f"{'counter':<52} {'injected':>9} {'router':>9}  equal")
    for row in rows:
        same = "yes" if row["injected"] == row["router"] else "NO"
        print(f"{row['counter']:<52} {row['injected']:>9} {row['router']:>9}  {same}")
    print()
    print(f"{'':<30} {'no attack':>12} {'attack':>12}  target")
    print(
        f"{'legit msgs/s':<30} {calm['msgs_per_s']:>12,.0f} {hostile['msgs_per_s']:>12,.0f}"
        f"  ratio {ratio:.0%} (>= 80%)"
    )
    print(
        f"{'hostile inputs delivered':<30} {calm['hostile_delivered']:>12} "
        f"{hostile['hostile_delivered']:>12}  0"
    )
    print(
        f"{'legit received / unreceipted':<30} {calm['received']:>7}/{calm['unreceipted']:<4} "
        f"{hostile['received']:>7}/{hostile['unreceipted']:<4}  {args.messages}/0"
    )
    print(
        f"router RSS (MiB) start/middle/end: {rss[0][1] / 1024:.1f} / {mid[1] / 1024:.1f} / "
        f"{rss[-1][1] / 1024:.1f} (at {rss[0][0]:.1f} / {mid[0]:.1f} / {rss[-1][0]:.1f} s);"
        f" max {max(r[1] for r in rss) / 1024:.1f}; without attack, end: "
        f"{calm['rss_kib'][-1][1] / 1024:.1f}"
    )
    print(f"raw connections the router had not closed in time: {hostile['raw'][3]}")
    print(f"Nacks the fuzz peer heard, by code: {dict(sorted(hostile['fuzz'][3].items()))}")
    print()
    print(
        "per case: "
        + ", ".join(
            f"{k} {v}" for d in (hostile["fuzz"][1], hostile["raw"][1]) for k, v in d.items()
        )
    )
    write_json(
        args.json,
        {
            "args": vars(args),
            "rate": attack_rate,
            "counters": rows,
            "ratio": ratio,
            "calm": calm,
            "hostile": hostile,
        },
    )


if __name__ == "__main__":
    main()
