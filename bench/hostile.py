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
under attack against without; the router's RSS at the attack's start, middle and end; the
CPU each process used while the load ran. JSON goes to ``--json``. ``--per-case N`` instead
runs each case N times alone against an idle router, and gives the router's CPU a input.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench._catalogue import FUZZ_CONNECTIONS, held_inside, measure
from bench._procs import cpu_ns, write_json

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

    began = time.monotonic()
    run_cases(peer.cases, peer.tally, rate, until, rounds)
    took = time.monotonic() - began
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # the last answers, for the Nack tally
        peer.drain()
        time.sleep(0.05)  # polling interval of a bounded wait
    peer.close()
    ctx.term()
    tally = peer.tally
    unclosed = peer.unclosed
    q.put(("fuzz", dict(tally.injected), dict(tally.expected), dict(peer.nacks), took, unclosed))


def raw(url: str, where: str, rate: float, q: Any, stop: Any, rounds: int = 0) -> None:
    import zmq

    from bench._catalogue import RawPeer, run_cases

    ctx: zmq.Context[Any] = zmq.Context()
    host, port = url[len("tcp://") :].rsplit(":", 1)
    peer = RawPeer(host, int(port), ctx, url, keys_of(where, "eve"))
    q.put(("ready", "raw"))

    def until() -> bool:
        peer.poll()
        return bool(stop.is_set())

    began = time.monotonic()
    run_cases(peer.cases, peer.tally, rate, until, rounds)
    took = time.monotonic() - began
    peer.settle(15.0)  # the router closes a silent connection after 5 s
    ctx.term()
    tally = peer.tally
    q.put(("raw", dict(tally.injected), dict(tally.expected), peer.unclosed, took))


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
    if not attack:
        inbox.idle(1.0)  # as long as the attack runs before the load: the same timeline
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

    def cpu() -> dict[str, int]:
        used = {"router": cpu_ns(proc.pid), "legit": sum(cpu_ns(p.pid or 0) for p in procs)}
        for name, p in zip(("fuzz", "raw"), attackers, strict=False):
            used[name] = cpu_ns(p.pid or 0)
        return used

    before = cpu()
    start = time.perf_counter()
    go.set()
    done = inbox.wait("done", args.pairs, 300)
    seconds = max(d[2] for d in done) - start
    after = cpu()
    # Share of one core each used while the load ran (clock ticks: 10 ms).
    load_cpu = {k: (after[k] - before[k]) / 1e9 / seconds for k in after}
    sent = inbox.wait("sender", args.pairs, 300)
    if attack:
        inbox.idle(args.attack_seconds - (time.monotonic() - t0))
    stop.set()
    received = inbox.wait("recipient", args.pairs, 60)
    results = {kind: inbox.wait(kind, 1, 120)[0] for kind in ("fuzz", "raw") if attack}
    sample()
    for p in procs + attackers:
        p.join(30)
    peers = list_peers(url, timeout=5, curve=admin)
    queries += 1
    # The counters as a Snapshot shows them once every connection is closed but its own
    # (whose opening is counted, and whose closing cannot be yet).
    made = 2 * args.pairs + (FUZZ_CONNECTIONS if attack else 0)  # the load's, the fuzz peer's
    made += sum(r[2].get("connections_accepted", 0) for r in results.values())
    deadline = time.monotonic() + 20
    while True:
        stats = snapshot(url, timeout=5, curve=admin).stats
        queries += 1
        opened, closed = stats.get("connections_accepted", 0), stats.get("connections_closed", 0)
        if (opened, closed) == (made + queries, made + queries - 1):
            break
        if time.monotonic() > deadline:
            break  # the table will show what is missing
        time.sleep(0.1)  # polling interval of a deadline wait
    sample()
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
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
        "load_cpu": load_cpu,
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
    legit = 2 * args.pairs + FUZZ_CONNECTIONS + run["queries"]
    expected["connections_accepted"] += legit
    expected["connections_closed"] += legit - 1  # the last Snapshot's own, still open
    # Every message the router took in is the load's, or the attack's (ghosts', flood's).
    expected["accepted"] += args.messages + held_inside(queued)
    return [
        {"counter": expr, "injected": expected[expr], "router": measure(expr, stats, queued)}
        for expr in sorted(expected)
    ]


def per_case(where: Path, n: int) -> list[dict[str, Any]]:
    """CPU the router spends a input, case by case, and how its RSS moved: each case ``n``
    times against an idle router with one recipient (``r0``) on line (CPU in clock ticks of
    10 ms: read differences of 50 us and more)."""
    import zmq

    from bench._catalogue import FuzzPeer, RawPeer
    from zmqswarm.client.sync import Client

    proc, url, _ = start_router(where)
    ctx: zmq.Context[Any] = zmq.Context()
    rows = []
    r0 = Client("r0", router=url, curve=keys_of(str(where), "r0"))
    try:
        r0.wait_ready(20)
        fuzz = FuzzPeer(ctx, url, keys_of(str(where), "fuzz"))
        host, port = url[len("tcp://") :].rsplit(":", 1)
        raw = RawPeer(host, int(port), ctx, url, keys_of(str(where), "eve"))
        for case in fuzz.cases + raw.cases:
            times = max(1, n // case.every)
            before, rss_before = cpu_ns(proc.pid), rss_kib(proc.pid)
            for _ in range(times):
                case.run()
                fuzz.drain()
                raw.poll()
            raw.settle(15.0)
            fuzz.drain()
            time.sleep(0.2)  # the router's last turns for these inputs: a bounded wait
            used, grew = cpu_ns(proc.pid) - before, rss_kib(proc.pid) - rss_before
            us = used / times / 1000
            rows.append({"case": case.id, "n": times, "router_us": us, "rss_kib": grew})
            print(f"{case.id:<26} {case.what[:52]:<52} {us:>6.0f} us {grew:>+7} KiB  (n={times})")
        fuzz.close()
    finally:
        r0.close()
        ctx.term()
        proc.terminate()
        proc.wait(30)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--messages", type=int, default=10_000, help="the legitimate load")
    ap.add_argument("--pairs", type=int, default=2, help="senders, and as many recipients")
    ap.add_argument("--rate", type=float, default=1000.0, help="hostile inputs a second")
    ap.add_argument("--attack-seconds", type=float, default=12.0)
    ap.add_argument("--runs", type=int, default=3, help="runs of each, in ABBA order")
    ap.add_argument("--json", default="bench/results/hostile.json")
    ap.add_argument(
        "--per-case",
        type=int,
        default=0,
        metavar="N",
        help="instead: the router's CPU a input, each case N times alone",
    )
    args = ap.parse_args()
    if args.per_case:
        with tempfile.TemporaryDirectory(prefix="zs-bench-hostile-") as tmp:
            rows = per_case(keyring(Path(tmp), args.pairs), args.per_case)
        write_json(args.json.replace(".json", "-per-case.json"), rows)
        return
    calm: list[dict[str, Any]] = []
    hostile: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="zs-bench-hostile-") as tmp:
        where = keyring(Path(tmp), args.pairs)
        for run in range(args.runs):
            # ABBA: the host's slow spells (it is shared) fall on both alike.
            for attack in (True, False) if run % 2 else (False, True):
                (hostile if attack else calm).append(phase(where, args, attack))
    report(args, calm, hostile)


def runs(phases: list[dict[str, Any]]) -> str:
    return " / ".join(f"{r['msgs_per_s'] / 1000:.1f}k" for r in phases)


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def report(
    args: argparse.Namespace, calm: list[dict[str, Any]], hostile: list[dict[str, Any]]
) -> None:
    tables = [compare(run, args) for run in hostile]
    equal = sum(all(r["injected"] == r["router"] for r in rows) for rows in tables)
    rows = [  # summed over the attack runs
        {
            "counter": row["counter"],
            "injected": sum(t[i]["injected"] for t in tables),
            "router": sum(t[i]["router"] for t in tables),
        }
        for i, row in enumerate(tables[0])
    ]
    calm_rate = statistics.median(r["msgs_per_s"] for r in calm)
    attack_rate = statistics.median(r["msgs_per_s"] for r in hostile)
    ratio = attack_rate / calm_rate
    fuzz_n = sum(sum(r["fuzz"][1].values()) for r in hostile)
    raw_n = sum(sum(r["raw"][1].values()) for r in hostile)
    took = sum(max(r["fuzz"][4], r["raw"][4]) for r in hostile)
    delivered = sum(r["hostile_delivered"] for r in hostile + calm)
    cpu = f"{os.cpu_count()} CPUs"
    print(f"machine: {platform.machine()}, {cpu}, Python {platform.python_version()}")
    print(
        f"legitimate load: {args.messages} messages, {args.pairs} senders -> {args.pairs}"
        f" recipients; {args.runs} runs with the attack and {args.runs} without, ABBA"
    )
    print(
        f"attack: {fuzz_n + raw_n} hostile inputs ({fuzz_n} authenticated, {raw_n} raw TCP)"
        f" in {took:.1f} s: {(fuzz_n + raw_n) / took:,.0f} inputs/s"
    )
    print()
    print(f"{'counter (summed over the attack runs)':<58} {'injected':>9} {'router':>9}  equal")
    for row in rows:
        same = "yes" if row["injected"] == row["router"] else "NO"
        print(f"{row['counter']:<58} {row['injected']:>9} {row['router']:>9}  {same}")
    print(f"every counter equal in {equal} of {len(tables)} attack runs")
    print()
    print(
        f"legit msgs/s, median: no attack {calm_rate:,.0f} ({runs(calm)}),"
        f" attack {attack_rate:,.0f} ({runs(hostile)}): {ratio:.0%} (target >= 80%)"
    )
    print(f"hostile inputs delivered: {delivered} (target 0)")
    lost = sum(args.messages - r["received"] + r["unreceipted"] for r in calm + hostile)
    print(f"legitimate messages not received, or unreceipted: {lost}")
    for i, run in enumerate(hostile):
        rss = run["rss_kib"]
        mid = rss[len(rss) // 2]
        print(
            f"attack run {i + 1}: router RSS MiB start/middle/end {mib(rss[0][1])} /"
            f" {mib(mid[1])} / {mib(rss[-1][1])} (at {rss[0][0]:.0f} / {mid[0]:.0f} /"
            f" {rss[-1][0]:.0f} s), max {mib(max(r[1] for r in rss))};"
            f" connections not closed in time: {run['raw'][3] + run['fuzz'][5]}"
        )
    for label, phases in (("without attack", calm), ("attack", hostile)):
        keys = phases[0]["load_cpu"]
        shares = {k: statistics.median(r["load_cpu"][k] for r in phases) for k in keys}
        print(
            f"CPU while the load ran, {label} (medians, share of one core): "
            + ", ".join(f"{k} {v:.0%}" for k, v in shares.items())
        )
    ends = ", ".join(f"{r['rss_kib'][-1][1] / 1024:.1f}" for r in calm)
    print(f"without attack, router RSS MiB at the end: {ends}")
    nacks: Counter[int] = Counter()
    for run in hostile:
        nacks.update(run["fuzz"][3])
    print(f"Nacks the fuzz peer heard, by code: {dict(sorted(nacks.items()))}")
    write_json(
        args.json,
        {"args": vars(args), "counters": rows, "equal_runs": equal, "ratio": ratio,
         "calm": calm, "hostile": hostile},
    )  # fmt: skip


if __name__ == "__main__":
    main()
