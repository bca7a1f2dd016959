"""`python -m bench.scale`: a router with 1,000 idle peers connected, against the same router
with only the 2 that carry the load.

Per run, one router process (no journal, as bench.throughput) and, in turn:

1. throughput with 2 peers: a sender (this process) and a recipient ("sink", a process of its
   own), ``--n`` messages of 64 B, ``send_many(--batch)``; msgs/s from the sink's first
   message to its last, and the router's CPU a message (all its threads, from /proc);
2. ``--peers`` idle peers connect at once (``--processes`` processes, many Clients each): the
   time from the go to the last Welcome, and the router's resident memory before and after
   (VmRSS), divided by the peers: memory an idle peer; then the router's CPU over 4 s idle
   (its loop's apart);
3. throughput again, with them connected and idle (their ZMTP heartbeats flowing: every
   200 ms each way, run by libzmq's I/O threads);
4. the idle peers leave; throughput with 2 peers again.

Target: (3) ≥ 80% of the mean of (1) and (4). Runs interleave both loads, so the host's slow
spells (the machine is shared) fall on both.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path
from typing import Any

from bench._procs import (
    CTX,
    _reap,
    cpu_ns,
    endpoint,
    median,
    wait_path,
    write_json,
)
from bench.throughput import _zs_sink


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _loop_cpu_ns(pid: int) -> int:
    """CPU time of the router's main thread (its loop) so far, in ns; cpu_ns(pid) less this
    is libzmq's I/O thread (and the journal's, when there is one)."""
    with open(f"/proc/{pid}/task/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def _router(url: str, heartbeat: float) -> None:
    from zmqswarm.protocol import RouterOptions
    from zmqswarm.router.loop import Router

    opts = RouterOptions(heartbeat=heartbeat, heartbeat_timeout=4 * heartbeat)
    router = Router([url], options=opts)
    router.install_signal_handlers()
    router.run()


def _crowd(url: str, prefix: str, count: int, q: Any, go: Any, stop: Any, heartbeat: float) -> None:
    """``count`` idle Clients in this process, made at once when ``go`` is set."""
    import zmq

    from zmqswarm import Client
    from zmqswarm.protocol import ClientOptions

    opts = ClientOptions(heartbeat=heartbeat, heartbeat_timeout=4 * heartbeat)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 8 * count + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, 4 * count + 64)  # three sockets a Client; 1023 by default
    q.put("ready")
    go.wait()
    start = time.monotonic()
    clients = [Client(f"{prefix}{i}", router=url, context=ctx, options=opts) for i in range(count)]
    waiting = clients
    while waiting:
        for client in waiting:
            client.poll()
        waiting = [c for c in waiting if not c.connected]
        if waiting:
            waiting[0].poll(0.005)
    q.put(time.monotonic() - start)
    while not stop.wait(1.0):
        for client in clients:  # idle, as a recipient blocked in recv() is
            client.poll()
    for client in clients:
        client.close(timeout=1.0)
    ctx.term()
    q.put("closed")


class Crowd:
    def __init__(self, url: str, peers: int, processes: int, heartbeat: float) -> None:
        self.q: Any = CTX.Queue()
        self.go, self.stop = CTX.Event(), CTX.Event()
        self.procs = []
        self.started = 0.0
        for p in range(processes):
            count = peers // processes + (p < peers % processes)
            args = (url, f"idle{p}-", count, self.q, self.go, self.stop, heartbeat)
            proc = CTX.Process(target=_crowd, args=args)
            proc.start()
            self.procs.append(proc)
        for _ in self.procs:
            assert self.q.get(timeout=60) == "ready"

    def connect(self) -> float:
        """Seconds from the go to the last Welcome of all processes."""
        self.started = time.monotonic()
        self.go.set()
        took: list[float] = [self.q.get(timeout=60) for _ in self.procs]
        return max(took)

    def leave(self) -> None:
        self.stop.set()
        for _ in self.procs:
            assert self.q.get(timeout=60) == "closed"
        _reap(*self.procs)


def throughput(url: str, router_pid: int, n: int, batch: int) -> tuple[float, float]:
    """(msgs/s, router CPU µs a message) for ``n`` messages sender -> router -> sink."""
    from zmqswarm.client.sync import Client

    q: Any = CTX.Queue()
    sink = CTX.Process(target=_zs_sink, args=(url, n, q))
    sink.start()
    assert q.get(timeout=30) == "ready"
    before = cpu_ns(router_pid)
    with Client("source", router=url) as client:
        chunk = [b"x" * 64] * batch
        for _ in range(n // batch):
            client.send_many("sink", chunk)
        assert client.close(timeout=300) == []
        rate: float = q.get(timeout=300)[0]  # (rate, CPU ns, I/O thread ns)
    cpu = (cpu_ns(router_pid) - before) / n / 1000
    _reap(sink)
    return rate, cpu


def one_run(n: int, batch: int, peers: int, processes: int, heartbeat: float) -> dict[str, float]:
    from zmqswarm.observe import list_peers

    url = endpoint("scale")
    router = CTX.Process(target=_router, args=(url, heartbeat))
    router.start()
    wait_path(url)
    pid = router.pid or 0
    try:
        crowd = Crowd(url, peers, processes, heartbeat)
        rate_a1, cpu_a1 = throughput(url, pid, n, batch)
        time.sleep(0.5)  # the sink's session ended: the router is at rest
        rss_before = _rss_mib(pid)
        connect_s = crowd.connect()
        deadline = time.monotonic() + 30
        while sum(p.online for p in list_peers(url) if p.name.startswith("idle")) < peers:
            assert time.monotonic() < deadline, "idle peers never all online"
            time.sleep(0.05)
        shown_s = time.monotonic() - crowd.started
        time.sleep(1.0)  # connections settled, heartbeats flowing
        rss_after = _rss_mib(pid)
        cpu0, loop0 = cpu_ns(pid), _loop_cpu_ns(pid)
        peers0 = sum(cpu_ns(p.pid or 0) for p in crowd.procs)
        time.sleep(4.0)
        idle_cpu = (cpu_ns(pid) - cpu0) / 4e9  # share of one core
        idle_loop = (_loop_cpu_ns(pid) - loop0) / 4e9
        idle_peers = (sum(cpu_ns(p.pid or 0) for p in crowd.procs) - peers0) / 4e9
        rate_b, cpu_b = throughput(url, pid, n, batch)
        crowd.leave()
        time.sleep(0.5)
        rate_a2, cpu_a2 = throughput(url, pid, n, batch)
    finally:
        router.terminate()
        _reap(router)
    base = (rate_a1 + rate_a2) / 2
    return {
        "rate_2": base,
        "rate_idle": rate_b,
        "ratio": rate_b / base,
        "cpu_us_2": (cpu_a1 + cpu_a2) / 2,
        "cpu_us_idle": cpu_b,
        "connect_s": connect_s,
        "online_s": shown_s,
        "rss_before_mib": rss_before,
        "rss_after_mib": rss_after,
        "kib_per_peer": (rss_after - rss_before) * 1024 / peers,
        "idle_core_share": idle_cpu,
        "idle_loop_share": idle_loop,
        "idle_peers_share": idle_peers,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=100_000, help="messages a throughput run")
    ap.add_argument("--batch", type=int, default=64, help="send_many batch (1: send())")
    ap.add_argument("--peers", type=int, default=1000)
    ap.add_argument("--processes", type=int, default=4, help="processes the idle peers are in")
    ap.add_argument(
        "--heartbeat", type=float, default=0.2,
        help="ZMTP heartbeat interval of the router and the idle peers, s (timeout 4x)",
    )  # fmt: skip
    ap.add_argument("--json", default="bench/results/scale.json")
    args = ap.parse_args()
    n = args.n - args.n % args.batch
    runs = [
        one_run(n, args.batch, args.peers, args.processes, args.heartbeat) for _ in range(args.runs)
    ]
    m = {key: median([r[key] for r in runs]) for key in runs[0]}
    ratios = " / ".join(f"{r['ratio']:.0%}" for r in runs)
    print(f"{args.peers} idle peers in {args.processes} processes, heartbeat {args.heartbeat} s,"
          f" {args.runs} runs (medians)")  # fmt: skip
    print(f"{'':<44} {'2 peers':>10} {f'+{args.peers} idle':>12}")
    print(f"{'throughput, msgs/s (send_many(' + str(args.batch) + '), 64 B)':<44} "
          f"{m['rate_2']:>10,.0f} {m['rate_idle']:>12,.0f}")  # fmt: skip
    print(f"{'router CPU a message, µs':<44} {m['cpu_us_2']:>10.2f} {m['cpu_us_idle']:>12.2f}")
    print(f"{'router RSS, MiB':<44} {m['rss_before_mib']:>10.1f} {m['rss_after_mib']:>12.1f}")
    print(f"ratio {m['ratio']:.1%} (target ≥ 80%; runs {ratios})")
    print(f"router memory an idle peer: {m['kib_per_peer']:.1f} KiB")
    print(f"router CPU while they idle: {m['idle_core_share']:.1%} of a core, of which its "
          f"loop {m['idle_loop_share']:.1%} (the rest: libzmq's I/O thread); the idle peers' "
          f"processes {m['idle_peers_share']:.1%}")  # fmt: skip
    print(f"connect at once: last Welcome {m['connect_s']:.2f} s, all listed online "
          f"{m['online_s']:.2f} s after the go (target ≤ 2 s)")  # fmt: skip
    write_json(args.json, {"args": vars(args), "median": m, "runs": runs, "pid": os.getpid()})


if __name__ == "__main__":
    main()
