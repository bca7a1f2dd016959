"""`python -m bench.throughput`: messages per second through a router, zmqswarm against a raw
pyzmq ceiling measured in the same run (this machine is shared and noisy: read the ratio).

(a) ceiling: DEALER -> Python ROUTER (fixed-arity recv/send) -> DEALER. No receipts, no acks.
(b) zmqswarm: Client -> zs router -> Client, each in its own process, with receipts, delivery
    acks and dedup; the sink takes what waits with recv_many(); the clock runs from the
    first message received to the last.
(c) with --stores, (b) again with the sender on a spool and the sink on a state (files in a
    fresh temp dir, default fsync_every): what resuming after a kill costs.
(d) with --curve, instead: (b) over tcp://127.0.0.1, without CURVE and with it (keys made
    as `zs keys` makes them, the router's ZAP handler and allow list on), run by run in
    turn: what security costs, and the CPU a message of each process.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from typing import Any

import zmq

from bench._procs import (
    CTX,
    Curve,
    cpu_ns,
    curve_keys,
    io_thread_ns,
    median,
    raw_path,
    raw_sink_socket,
    write_json,
    zs_path,
)
from zmqswarm.keys import ClientKeys


def _ceiling_sink(url: str, n: int, q: Any, curve: ClientKeys | None = None) -> None:
    """Puts "ready", then (messages a second, its CPU ns, its libzmq I/O thread's), all from
    the first message received to the last."""
    ctx, sock = raw_sink_socket(url, curve)
    me = os.getpid()
    q.put("ready")
    sock.recv()
    start, cpu, io = time.perf_counter(), cpu_ns(me), io_thread_ns(me)
    for _ in range(n - 1):
        sock.recv()
    q.put(((n - 1) / (time.perf_counter() - start), cpu_ns(me) - cpu, io_thread_ns(me) - io))


def ceiling(
    size: int,
    n: int,
    *,
    tcp: bool = False,
    curve: Curve | None = None,
    cpu: dict[str, float] | None = None,
) -> float:
    """Messages a second through the raw pyzmq forwarder (over tcp://127.0.0.1 if ``tcp``;
    with CURVE, its keys ``curve``, if given); ``cpu`` as for ``zmqswarm``."""
    report: Any = CTX.Queue()  # the router's own CPU: it ends with its last forward
    tcp = tcp or curve is not None
    with raw_path(n, _ceiling_sink, tcp=tcp, curve=curve, report=report) as (src, q, pids):
        payload = b"x" * size
        send, more = src.send, zmq.SNDMORE
        before = _meter(pids)
        for _ in range(n):
            send(b"sink", more)
            send(payload)
        rate, *sink = q.get(timeout=120)
        _record(cpu, n, before, pids, sink, router=report.get(timeout=30))
    return float(rate)


def _meter(pids: list[int]) -> list[int]:
    """CPU ns so far of the source's and the router's processes, and of their I/O threads."""
    return [f(pid) for pid in pids[:2] for f in (cpu_ns, io_thread_ns)]


def _record(
    cpu: dict[str, float] | None,
    n: int,
    before: list[int],
    pids: list[int],
    sink: list[int],
    router: tuple[int, int] | None = None,
) -> None:
    """Into ``cpu``: each process's CPU (and its I/O thread's) in us a message since
    ``before``; ``sink`` (and ``router``, if given): its own (CPU ns, I/O thread ns)."""
    if cpu is None:
        return
    after = _meter(pids)
    spent = [b - a for a, b in zip(before, after, strict=True)]
    measured = (("source", spent[:2]), ("router", router or spent[2:]), ("sink", sink))
    for key, (total, io) in measured:
        cpu[key], cpu[f"{key}_io"] = total / n / 1e3, io / n / 1e3


def _zs_sink(
    url: str, n: int, q: Any, state: str | None = None, curve: ClientKeys | None = None
) -> None:
    """Puts "ready", then (messages a second, its CPU ns, its libzmq I/O thread's), all from
    the first message received to the last."""
    from zmqswarm.client.sync import Client

    me = os.getpid()
    with Client("sink", router=url, state=state, curve=curve) as client:
        q.put("ready")
        client.recv(timeout=30)
        got, start, cpu, io = 1, time.perf_counter(), cpu_ns(me), io_thread_ns(me)
        while got < n:  # recv_many: what waits, as a stream's consumer takes it
            got += len(client.recv_many(n - got, timeout=30))
        rate = (n - 1) / (time.perf_counter() - start)
        q.put((rate, cpu_ns(me) - cpu, io_thread_ns(me) - io))


def zmqswarm(
    size: int,
    n: int,
    batch: int,
    stores: bool = False,
    journal: str | None = None,
    *,
    tcp: bool = False,
    curve: Curve | None = None,
    cpu: dict[str, float] | None = None,
) -> float:
    """Messages a second through a zs router (journaled in ``journal`` if given; over
    tcp://127.0.0.1 if ``tcp``; with CURVE, its keys ``curve``, if given). ``cpu``, if given,
    gets the CPU of each process, in us a message (source, router, sink), and of its libzmq
    I/O thread (source_io, router_io, sink_io)."""
    from zmqswarm.client.sync import Client

    n -= n % batch  # whole batches only: the sink counts exactly what is sent
    payload = b"x" * size
    where = tempfile.mkdtemp(prefix="zs-bench-stores-") if stores else ""
    keys = curve.peers if curve else {}
    sink = functools.partial(
        _zs_sink, state=f"{where}/sink.state" if stores else None, curve=keys.get("sink")
    )
    with zs_path(n, sink, journal, tcp=tcp or curve is not None, curve=curve) as (url, q, pids):
        client = Client(
            "source",
            router=url,
            spool=f"{where}/source.spool" if stores else None,
            curve=keys.get("source"),
        )
        before = _meter(pids)
        if batch > 1:
            chunk = [payload] * batch
            for _ in range(n // batch):
                client.send_many("sink", chunk)
        else:
            for _ in range(n):
                client.send("sink", payload)
        # A Client works inside its caller's calls: refused messages (a full mailbox) are
        # retried, and receipts taken, only while it is called. close() waits for them.
        assert client.close(timeout=300) == [], "messages never receipted"
        rate, *sink = q.get(timeout=300)
        _record(cpu, n, before, pids, sink)  # the router is alive until the path ends
    return float(rate)


def compare_curve(n: int, runs: int, json_path: str) -> None:
    """--curve: the raw pyzmq forwarder and the zmqswarm paths over tcp://127.0.0.1, without
    CURVE and with it, run by run in turn (ABBA), with the CPU of each process a message."""
    keys = curve_keys("source", "sink")
    paths: list[tuple[str, int | None]] = [
        ("raw pyzmq", None),
        ("send()", 1),
        ("send_many(64)", 64),
    ]
    rows = []
    print(
        f"{'payload':>8} {'path':<14} {'plain msg/s':>12} {'CURVE msg/s':>12} {'ratio':>6}"
        f" {'CPU ratio':>9}  per-run ratios"
    )
    for size in (64, 1024):
        order = [(label, batch, secure) for label, batch in paths for secure in (False, True)]
        rates: dict[tuple[str, bool], list[float]] = {(lb, sc): [] for lb, _, sc in order}
        cpus: dict[tuple[str, bool], list[dict[str, float]]] = {k: [] for k in rates}
        for run in range(runs):
            for label, batch, secure in reversed(order) if run % 2 else order:
                meter: dict[str, float] = {}
                curve = keys if secure else None
                if batch is None:
                    rate = ceiling(size, n, tcp=True, curve=curve, cpu=meter)
                else:
                    rate = zmqswarm(size, n, batch, tcp=True, curve=curve, cpu=meter)
                rates[label, secure].append(rate)
                cpus[label, secure].append(meter)
        for label, _ in paths:
            plain, secured = rates[label, False], rates[label, True]
            ratio = median(secured) / median(plain)
            per_run = sorted(c / p for p, c in zip(plain, secured, strict=True))
            cpu = {sc: _median_cpu(cpus[label, sc]) for sc in (False, True)}
            # What the ratio would be if CPU alone bounded both: the whole path's CPU a
            # message without CURVE over with it (steadier than rates on a shared host).
            cpu_ratio = _total(cpu[False]) / _total(cpu[True])
            print(
                f"{size:>7}B {label:<14} {median(plain):>12,.0f} {median(secured):>12,.0f}"
                f" {ratio:>6.1%} {cpu_ratio:>9.1%}  {_ratios(per_run)}"
            )
            for name, secure in (("plain", False), ("CURVE", True)):
                print(f"{'':>9}CPU us/msg {name:<5} source + router + sink: {_cpu(cpu[secure])}")
            rows.append(
                {
                    "payload": size,
                    "path": label,
                    "transport": "tcp://127.0.0.1",
                    "plain": median(plain),
                    "curve": median(secured),
                    "ratio": ratio,
                    "cpu_ratio": cpu_ratio,
                    "per_run_ratios": per_run,
                    "plain_runs": plain,
                    "curve_runs": secured,
                    "cpu_us_per_msg": {"plain": cpu[False], "curve": cpu[True]},
                }
            )
    write_json(json_path, rows)


def _total(cpu: dict[str, float]) -> float:
    return cpu["source"] + cpu["router"] + cpu["sink"]


def _median_cpu(meters: list[dict[str, float]]) -> dict[str, float]:
    return {key: median([m[key] for m in meters]) for key in meters[0]}


def _cpu(cpu: dict[str, float]) -> str:
    """Each process's CPU a message, its libzmq I/O thread's in brackets."""
    return " + ".join(f"{cpu[k]:.1f} ({cpu[f'{k}_io']:.1f})" for k in ("source", "router", "sink"))


def _ratios(ratios: list[float]) -> str:
    return " ".join(f"{r:.0%}" for r in ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000, help="messages per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="default: bench/results/throughput[_curve].json")
    ap.add_argument("--stores", action="store_true", help="also with spool= and state=")
    ap.add_argument(
        "--curve", action="store_true", help="instead: over tcp, without CURVE against with it"
    )
    args = ap.parse_args()
    if args.curve:
        compare_curve(args.n, args.runs, args.json or "bench/results/throughput_curve.json")
        return
    args.json = args.json or "bench/results/throughput.json"
    rows = []
    print(f"{'payload':>8} {'path':<22} {'msgs/s (median)':>16} {'of ceiling':>11}  runs")
    paths: list[tuple[str, int]] = [("zmqswarm send()", 1), ("zmqswarm send_many(64)", 64)]
    if args.stores:
        paths += [("send() spool+state", -1), ("send_many(64) spool+st", -64)]
    for size in (64, 1024):
        # Run by run, all paths in turn: the host's slow spells (this machine is shared) then
        # fall on all of them alike, instead of on whichever path ran last. The order flips
        # every run (ABBA): on this host the second of a pair seemed favoured.
        ceil: list[float] = []
        zs: dict[str, list[float]] = {label: [] for label, _ in paths}
        order: list[tuple[str, int | None]] = [("ceiling", None), *paths]
        for run in range(args.runs):
            for label, batch in reversed(order) if run % 2 else order:
                if batch is None:
                    ceil.append(ceiling(size, args.n))
                else:  # a negative batch: the same, on a spool and a state
                    zs[label].append(zmqswarm(size, args.n, abs(batch), batch < 0))
        c = median(ceil)
        print(f"{size:>7}B {'raw pyzmq ceiling':<22} {c:>16,.0f} {'100%':>11}  {ceil_fmt(ceil)}")
        rows.append({"payload": size, "path": "ceiling", "median": c, "runs": ceil})
        for label, runs in zs.items():
            m = median(runs)
            print(f"{size:>7}B {label:<22} {m:>16,.0f} {m / c:>11.1%}  {ceil_fmt(runs)}")
            rows.append({"payload": size, "path": label, "median": m, "ratio": m / c, "runs": runs})
    write_json(args.json, rows)


def ceil_fmt(runs: list[float]) -> str:
    return " / ".join(f"{r / 1000:.0f}k" for r in sorted(runs))


if __name__ == "__main__":
    main()
