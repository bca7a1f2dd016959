"""`python -m bench.latency`: send -> recv latency at a fixed offered rate, open loop.

Each message carries the time it was *scheduled* to be sent, so a sender that falls behind
cannot hide the queueing it causes (no coordinated omission). All paths are measured in the
same run: (a) raw DEALER -> Python ROUTER -> DEALER, blocking at both ends, and with asyncio
ends (the floor for an asyncio client), (a') the minimal reliable loop of bench/minimal.py
(the least Python that keeps receipts, dedup, a mailbox and acks: the yardstick for what
zmqswarm's structure costs), (b) zmqswarm Client -> router -> Client and
AsyncClient -> router -> AsyncClient, with receipts and acks, (c) the raw path and Client
again with a sender that keeps the GIL busy between sends (it spins until each is due, as a
runner that computes would). Percentiles come from a histogram; the first second is warm-up.
Each row also gives the CPU a message that its processes spent while it ran (all threads,
kernel time included, from /proc): at a fixed rate on two cores, that is what sets how long
each wake-up waits for a core.

Each run is a fresh interpreter (a zmq context's I/O thread keeps the CPUs it was born on, so
``--layout placed`` pins before any context exists). The table ends with the targets, each
against the raw floor measured in the same runs: Client p50 within 2x and p99 within 1.5x of
the raw path's, p99 <= 1 ms whenever the raw p99 is under 0.7 ms, and the busy sender's p99
within 2x of the raw busy sender's.
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from math import isnan, nan
from typing import Any

import zmq

from bench import _procs, minimal
from bench._hist import Histogram
from bench._procs import cpu_ns, median, raw_path, raw_sink_socket, wakeups, write_json, zs_path
from zmqswarm.transport import readable

STAMP = struct.Struct("<q")
PCTS = (50.0, 90.0, 99.0, 99.9)


def _due(rate: int, seconds: float, size: int) -> Iterator[list[bytes]]:
    """The open-loop schedule: ``rate``/s for ``seconds``, as batches of the payloads due now,
    each starting with its scheduled time. Asked for the next batch, it sleeps until that is
    due: no core is burnt spinning (this machine has two, shared by three processes), and a
    message sent late still counts from when it was due, so lateness shows up as latency."""
    pad = b"x" * max(0, size - STAMP.size)
    interval = 1_000_000_000 // rate
    start = time.monotonic_ns() + 50_000_000
    n = int(rate * seconds)
    i = 0
    while i < n:
        now = time.monotonic_ns()
        due = []
        while i < n and start + i * interval <= now:
            due.append(STAMP.pack(start + i * interval) + pad)
            i += 1
        yield due
        if i < n:
            time.sleep(max(0, start + i * interval - time.monotonic_ns()) / 1e9)


def _paced(send: Any, rate: int, seconds: float, size: int) -> None:
    """Send each payload of the schedule as it falls due."""
    for due in _due(rate, seconds, size):
        for payload in due:
            send(payload)


def _spinning(send: Any, rate: int, seconds: float, size: int) -> None:
    """``_paced`` for a sender that never sleeps: between sends it spins in Python until the
    next one is due, holding the GIL, as an application computing between sends does."""
    pad = b"x" * max(0, size - STAMP.size)
    interval = 1_000_000_000 // rate
    start = time.monotonic_ns() + 50_000_000
    clock = time.monotonic_ns
    for i in range(int(rate * seconds)):
        due = start + i * interval
        while clock() < due:
            pass
        send(STAMP.pack(due) + pad)


async def _paced_async(send: Any, rate: int, seconds: float, size: int) -> None:
    """``_paced`` for an asyncio sender (``send`` is a coroutine function): after sending what
    is due it yields to the loop once, so that a client's turn puts them on the wire. The
    schedule's sleep then blocks the loop: asyncio's timers wait at least 1 ms (epoll's
    resolution), which at 10k/s would send in bursts of ten and charge the bench's pacing to
    the path."""
    import asyncio

    for due in _due(rate, seconds, size):
        for payload in due:
            await send(payload)
        await asyncio.sleep(0)


# A path's latencies (ns), and the CPU a message (us) of each process it ran in: this one
# (the pacer and any sending client), then the router's and the sink's where it has them.
Run = tuple[list[int], list[float]]


def _metered(pids: list[int], n: int, sending: Callable[[], object]) -> list[float]:
    """Run ``sending``; return the CPU each process of ``pids`` spent meanwhile, in us a
    message, kernel time included (the first includes the pacer: its own row says how much),
    then the wake-ups a message of each (voluntary context switches of all its threads)."""
    before = [cpu_ns(pid) for pid in pids]
    slept = [wakeups(pid) for pid in pids]
    sending()
    after = [cpu_ns(pid) for pid in pids]
    woke = [wakeups(pid) for pid in pids]
    # A raw router may forward the last message and exit before the reading: no count (NaN).
    cpu = [(a - b) / n / 1000 if a >= b else nan for a, b in zip(after, before, strict=True)]
    return cpu + [(a - b) / n if a >= b else nan for a, b in zip(woke, slept, strict=True)]


def _median_of_counted(values: tuple[float, ...]) -> float:
    """The median of the values that were measured (NaN: a CPU count lost, see _metered)."""
    counted = [v for v in values if not isnan(v)]
    return median(counted) if counted else nan


def _cpu_clock() -> tuple[int, int]:
    """(stolen, total) CPU time of this whole machine so far, in clock ticks (``/proc/stat``;
    (0, 0) where it is missing). Steal is time the hypervisor ran something else while this
    VM's CPUs had work: the one sign, from inside, of a neighbour loading the host."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    steal = ticks[7] if len(ticks) > 7 else 0
    return steal, sum(ticks[:8])  # guest time (fields 9-10) is already counted in user


def _precise_sleep() -> None:
    """Ask Linux to wake this thread's sleeps within 1 us instead of the default 50 us of
    timer slack: the pacer then sends 30 us late at p50 instead of 80-90 us (measured here),
    and that lateness would count as latency on every path."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK, in ns
    except (OSError, AttributeError):
        pass  # not Linux: the default slack only makes every row a little worse


def pacer(rate: int, seconds: float, size: int) -> Run:
    """The pacer alone: how late it sends. Every other row includes this."""
    late: list[int] = []

    def send(payload: bytes) -> None:
        late.append(time.monotonic_ns() - STAMP.unpack_from(payload)[0])

    cpu = _metered([os.getpid()], int(rate * seconds), lambda: _paced(send, rate, seconds, size))
    return late, cpu


def _summarize(latencies: list[int], warmup: int) -> dict[str, float]:
    """Percentiles and max in us of what came after the warm-up; NaN if nothing did (an
    empty histogram reads 0, which would pass any target)."""
    measured = latencies[warmup:]
    if not measured:
        return {f"p{p:g}": nan for p in PCTS} | {"max": nan}
    hist = Histogram()
    for ns in measured:
        hist.record(ns)
    return {f"p{p:g}": hist.percentile(p) / 1000 for p in PCTS} | {"max": hist.max / 1000}


def _raw_sink(url: str, n: int, q: Any) -> None:
    ctx, sock = raw_sink_socket(url)
    q.put("ready")
    lat = []
    for _ in range(n):
        payload = sock.recv()
        lat.append(time.monotonic_ns() - STAMP.unpack_from(payload)[0])
    q.put(lat)


def raw(rate: int, seconds: float, size: int, pace: Any = _paced) -> Run:
    n = int(rate * seconds)
    with raw_path(n, _raw_sink) as (src, q, pids):
        more = zmq.SNDMORE

        def send(payload: bytes) -> None:
            src.send(b"sink", more)
            src.send(payload)

        cpu = _metered(pids, n, lambda: pace(send, rate, seconds, size))
        lat: list[int] = q.get(timeout=60)
    return lat, cpu


def raw_busy(rate: int, seconds: float, size: int) -> Run:
    return raw(rate, seconds, size, _spinning)


def _raw_async_sink(url: str, n: int, q: Any) -> None:
    """``_raw_sink`` on an asyncio loop the way AsyncClient reads: a reader callback that
    drains the socket while EVENTS says so, and one future per wait."""
    import asyncio

    async def run() -> None:
        ctx, sock = raw_sink_socket(url)
        loop = asyncio.get_running_loop()
        inbox: list[bytes] = []
        waiting: list[asyncio.Future[None]] = []

        def on_readable() -> None:
            while readable(sock):
                inbox.append(sock.recv())
            if inbox and waiting:
                fut = waiting.pop()
                if not fut.done():
                    fut.set_result(None)

        loop.add_reader(sock.fileno(), on_readable)
        on_readable()  # connecting may have eaten the descriptor's edge
        q.put("ready")
        lat = []
        for _ in range(n):
            while not inbox:
                fut = loop.create_future()
                waiting.append(fut)
                await fut
            payload = inbox.pop(0)
            lat.append(time.monotonic_ns() - STAMP.unpack_from(payload)[0])
        q.put(lat)

    asyncio.run(run())


def raw_async(rate: int, seconds: float, size: int) -> Run:
    """The ceiling with asyncio at both ends, paced like ``zmqswarm_async``: the floor an
    asyncio client can hope for on this machine."""
    import asyncio

    n = int(rate * seconds)

    async def source(src: zmq.Socket[bytes]) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(src.fileno(), readable, src)
        more = zmq.SNDMORE

        async def send(payload: bytes) -> None:
            src.send(b"sink", more)
            src.send(payload)
            readable(src)  # as AsyncClient does after a send: the edge

        await _paced_async(send, rate, seconds, size)
        loop.remove_reader(src.fileno())

    with raw_path(n, _raw_async_sink) as (src, q, pids):
        cpu = _metered(pids, n, lambda: asyncio.run(source(src)))
        lat: list[int] = q.get(timeout=60)
    return lat, cpu


def _minimal_sink(url: str, n: int, q: Any) -> None:
    ctx, sock = minimal.sink_socket(url)
    q.put("ready")
    lat: list[int] = []
    unpack = STAMP.unpack_from
    minimal.receive(sock, n, lambda payload: lat.append(time.monotonic_ns() - unpack(payload)[0]))
    q.put(lat)
    sock.close(500)  # the last ack leaves
    ctx.term()


def minimal_reliable(rate: int, seconds: float, size: int) -> Run:
    """bench/minimal.py's path: the least Python that keeps the contract's core."""
    n = int(rate * seconds) + 1  # + the message that opens the path
    with minimal.path(n, _minimal_sink) as (sender, q, pids):
        sender.send(STAMP.pack(0))
        opened_by = time.monotonic() + 30
        while sender.pending:  # receipted: the path is up before the clock
            if time.monotonic() > opened_by:
                raise TimeoutError("the minimal loop's router never receipted its first message")
            sender.sock.poll(1000)
            sender.take_receipts()
        cpu = _metered(pids, n, lambda: _paced(sender.send, rate, seconds, size))
        lat: list[int] = q.get(timeout=60)
    return lat[1:], cpu


def _zs_sink(url: str, n: int, q: Any) -> None:
    from zmqswarm.client.sync import Client

    with Client("sink", router=url) as client:
        q.put("ready")
        lat = []
        for _ in range(n):
            msg = client.recv(timeout=30)
            lat.append(time.monotonic_ns() - STAMP.unpack_from(msg.payload)[0])
        q.put(lat)


def _zs_async_sink(url: str, n: int, q: Any) -> None:
    import asyncio

    from zmqswarm.client.aio import AsyncClient

    async def run() -> None:
        async with AsyncClient("sink", router=url) as client:
            q.put("ready")
            lat = []
            for _ in range(n):
                msg = await client.recv(timeout=30)
                lat.append(time.monotonic_ns() - STAMP.unpack_from(msg.payload)[0])
            q.put(lat)

    asyncio.run(run())


def zmqswarm_async(rate: int, seconds: float, size: int) -> Run:
    """The same through AsyncClient at both ends: one thread per process, no hand-offs."""
    import asyncio

    from zmqswarm.client.aio import AsyncClient

    n = int(rate * seconds) + 1

    async def source(url: str) -> None:
        async with AsyncClient("source", router=url) as client:
            await (await client.send("sink", STAMP.pack(0))).wait("accepted")
            await _paced_async(lambda p: client.send("sink", p), rate, seconds, size)
            await client.close(timeout=30)

    with zs_path(n, _zs_async_sink) as (url, q, pids):
        # The whole source, its session's opening and closing included: a few ms of 4 s.
        cpu = _metered(pids, n, lambda: asyncio.run(source(url)))
        lat: list[int] = q.get(timeout=60)
    return lat[1:], cpu


def zmqswarm(rate: int, seconds: float, size: int, pace: Any = _paced) -> Run:
    from zmqswarm.client.sync import Client

    n = int(rate * seconds) + 1  # + the message that opens the session
    with zs_path(n, _zs_sink) as (url, q, pids), Client("source", router=url) as client:
        client.send("sink", STAMP.pack(0)).wait("accepted")  # session up before the clock
        cpu = _metered(pids, n, lambda: pace(lambda p: client.send("sink", p), rate, seconds, size))
        lat: list[int] = q.get(timeout=60)
    return lat[1:], cpu


def zmqswarm_busy(rate: int, seconds: float, size: int) -> Run:
    return zmqswarm(rate, seconds, size, _spinning)


PATHS: tuple[tuple[str, Callable[[int, float, int], Run]], ...] = (
    ("pacer alone (lateness)", pacer),
    ("raw pyzmq router", raw),
    ("raw, asyncio ends", raw_async),
    ("minimal reliable loop", minimal_reliable),
    ("zmqswarm Client", zmqswarm),
    ("zmqswarm AsyncClient", zmqswarm_async),
    ("raw, busy sender", raw_busy),
    ("zmqswarm Client, busy sender", zmqswarm_busy),
)

Pins = tuple[list[int], list[int], list[int]]  # the source's, router's and sink's CPUs
LAYOUT_NAMES = ("unpinned", "placed")
TARGET_P99_US = 1000.0  # p99 <= 1 ms at 10k msg/s, whenever the raw floor allows it
FLOOR_FOR_TARGET_US = 700.0  # ...which is when the raw path's own p99 is under this


def _layout(name: str) -> Pins:
    """Where each process runs. "placed" is the README's layout for a two-core machine: the
    sender's threads on one core, the router and the recipient on another, so that each
    hand-off between threads of one process stays on its core. Its cores are the first two
    this process may use, not CPUs 0 and 1, which a cpuset may not hold."""
    if name == "unpinned":
        return [], [], []
    first, second = _procs.ALL_CPUS[:2]
    return [first], [second], [second]


def _sitting(rate: int, seconds: float, size: int, run: int) -> dict[str, Any]:
    """One run of every path in this process, with the host's steal counted: a child's whole
    job (``--child-run``). The order of the paths flips every run (ABBA): a slow spell of this
    shared host then falls on every path alike, and no path always runs first."""
    _precise_sleep()
    stolen_before, total_before = _cpu_clock()
    rows: dict[str, dict[str, Any]] = {}
    for label, fn in reversed(PATHS) if run % 2 else PATHS:
        lat, metered = fn(rate, seconds, size)
        half = len(metered) // 2
        cpu, woke = metered[:half], metered[half:]
        summary = _summarize(lat, warmup=rate) | {"cpu_per_msg": sum(cpu)}
        rows[label] = {"summary": summary, "cpu": cpu, "wakeups": woke}
    stolen_after, total_after = _cpu_clock()
    return {
        "rows": rows,
        "steal": stolen_after - stolen_before,
        "total": total_after - total_before,
    }


def _child(argv: list[str]) -> dict[str, Any]:
    """Run every path once in a fresh interpreter: pinning this process must come before it
    makes its first zmq context, whose I/O thread keeps the affinity it was born with."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "run.json")
        cmd = [sys.executable, "-m", "bench.latency", *argv, "--child-out", out]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        with open(out) as f:
            result: dict[str, Any] = json.load(f)
    return result


def _pin_args(pins: Pins) -> list[str]:
    flags = ("--source-cpu", "--router-cpu", "--sink-cpu")
    return [
        arg for flag, cpus in zip(flags, pins, strict=True) for c in cpus for arg in (flag, str(c))
    ]


def _report(name: str, pins: Pins, runs: list[Any], args: argparse.Namespace) -> dict[str, Any]:
    """Print one layout's table (medians over its runs) and return its JSON."""
    who = ("sources", "routers", "sinks")
    where = "".join(f", {w} on CPU {cpus}" for w, cpus in zip(who, pins, strict=True) if cpus)
    steal_ticks, total_ticks = sum(r["steal"] for r in runs), sum(r["total"] for r in runs)
    steal = 100 * steal_ticks / total_ticks if total_ticks > 0 else nan
    offered = f"{args.rate:,} msg/s offered, {args.size} B, {args.seconds:g} s"
    print(f"\n{name}: open loop, {offered}{where}, us:")
    print(
        f"{'path':<28}"
        + "".join(f"{f'p{p:g}':>9}" for p in PCTS)
        + f"{'max':>9}{'CPU/msg':>9}  by process (source + router + sink): CPU us, wake-ups"
    )
    rows: list[dict[str, Any]] = []
    for label, _ in PATHS:
        summaries = [r["rows"][label]["summary"] for r in runs]
        cpus = [r["rows"][label]["cpu"] for r in runs]
        med = {k: _median_of_counted(tuple(s[k] for s in summaries)) for k in summaries[0]}
        woke = [r["rows"][label]["wakeups"] for r in runs]
        # CPU and wake-ups a message by process (source, router, sink), medians over runs.
        split = [_median_of_counted(col) for col in zip(*cpus, strict=True)]
        wakes = [_median_of_counted(col) for col in zip(*woke, strict=True)]
        print(
            f"{label:<28}"
            + "".join(f"{med[k]:>9.0f}" for k in med)
            + "  "
            + " + ".join(f"{c:.0f}" for c in split)
            + ";  "
            + " + ".join(f"{w:.2f}" for w in wakes)
        )
        rows.append(
            {
                "path": label,
                "median_of_runs_us": med,
                "runs_us": summaries,
                "cpu_us_per_msg_by_process": cpus,
                "wakeups_per_msg_by_process": woke,
            }
        )
    print(f"CPU time stolen by the hypervisor during these runs: {steal:.1f}%")
    verdicts = _verdicts({r["path"]: r["median_of_runs_us"] for r in rows})
    for line in verdicts:
        print(line)
    source, router, sink = pins
    return {
        "layout": name,
        "source_cpus": source,
        "router_cpus": router,
        "sink_cpus": sink,
        "steal_pct": steal,
        "rows": rows,
        "verdicts": verdicts,
    }


def _verdicts(med: dict[str, dict[str, float]]) -> list[str]:
    """The targets, each against the raw floor of the same runs (NaN: missed)."""
    raw, client = med["raw pyzmq router"], med["zmqswarm Client"]
    busy_raw, busy = med["raw, busy sender"], med["zmqswarm Client, busy sender"]

    def within(value: float, limit: float) -> str:
        return "met" if value <= limit else "MISSED"

    lines = [
        f"Client p50 {client['p50']:,.0f} us = {client['p50'] / raw['p50']:.2f}x raw"
        f" (target <= 2x): {within(client['p50'], 2 * raw['p50'])}",
        f"Client p99 {client['p99']:,.0f} us = {client['p99'] / raw['p99']:.2f}x raw"
        f" (target <= 1.5x): {within(client['p99'], 1.5 * raw['p99'])}",
        f"busy sender: Client p99 {busy['p99']:,.0f} us = {busy['p99'] / busy_raw['p99']:.2f}x"
        f" raw's (target <= 2x): {within(busy['p99'], 2 * busy_raw['p99'])}",
    ]
    for label in ("zmqswarm Client", "zmqswarm AsyncClient"):
        p99 = med[label]["p99"]
        if raw["p99"] < FLOOR_FOR_TARGET_US:
            lines.append(f"{label[9:]} p99 {p99:,.0f} us (target <= 1 ms): {within(p99, 1000)}")
        else:
            lines.append(
                f"{label[9:]} p99 {p99:,.0f} us: not judged, the raw floor's own p99 is"
                f" {raw['p99']:,.0f} us (a noisy spell)"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rate", type=int, default=10_000, help="offered messages per second")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--runs", type=int, default=3, help="runs of every path, per layout")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--json", default="bench/results/latency.json")
    ap.add_argument(
        "--layout",
        choices=[*LAYOUT_NAMES, "both"],
        default=None,
        help="where the processes run: unpinned (the default), placed (the source on one "
        "CPU, the router and the sink on another) or both, interleaved run by run",
    )
    ap.add_argument(
        "--router-cpu",
        type=int,
        action="append",
        default=[],
        help="pin every path's router process to this CPU, as `zs router --cpu` does",
    )
    ap.add_argument(
        "--source-cpu",
        type=int,
        action="append",
        default=[],
        help="pin this process (the pacer and every path's sender, threads included) here",
    )
    ap.add_argument(
        "--sink-cpu",
        type=int,
        action="append",
        default=[],
        help="pin every path's receiving process here",
    )
    ap.add_argument("--child-run", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.seconds <= 1:
        ap.error("--seconds must be more than the 1 s warm-up, which is not counted")
    custom = (args.source_cpu, args.router_cpu, args.sink_cpu)
    if args.child_run is not None:  # one run of every path, placed as the parent said
        _procs.ROUTER_CPUS[:] = args.router_cpu
        _procs.SINK_CPUS[:] = args.sink_cpu
        if args.source_cpu:  # before this process makes a context: libzmq's thread follows
            os.sched_setaffinity(0, args.source_cpu)
        write_json(args.child_out, _sitting(args.rate, args.seconds, args.size, args.child_run))
        return
    two_cpus = len(_procs.ALL_CPUS) >= 2  # ALL_CPUS is empty where affinity is unknown
    if any(custom):
        if args.layout is not None:
            ap.error("--layout and --*-cpu are alternatives")
        layouts: dict[str, Pins] = {"custom": custom}
    else:
        layout = args.layout or "unpinned"
        if layout != "unpinned" and not two_cpus:
            ap.error(f"--layout {layout} needs two CPUs this process may use")
        names = LAYOUT_NAMES if layout == "both" else (layout,)
        layouts = {name: _layout(name) for name in names}
    common = ["--rate", str(args.rate), "--seconds", str(args.seconds), "--size", str(args.size)]
    runs: dict[str, list[Any]] = {name: [] for name in layouts}
    # Layouts take turns run by run, their order flipping too: a slow spell of this shared
    # host then falls on both alike.
    for run in range(args.runs):
        for name in reversed(list(layouts)) if run % 2 else layouts:
            runs[name].append(_child([*common, "--child-run", str(run), *_pin_args(layouts[name])]))
            print(f"run {run + 1}/{args.runs} {name}: done", file=sys.stderr)
    report = [_report(name, pins, runs[name], args) for name, pins in layouts.items()]
    write_json(args.json, {"rate": args.rate, "size": args.size, "layouts": report})


if __name__ == "__main__":
    main()
