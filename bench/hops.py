"""`python -m bench.hops`: where one message's latency goes, hop by hop, process by process.

bench.latency says how long a message takes at a fixed rate; this says where the time goes.
Sender -> router -> recipient, a process each, open loop (each message carries the time it
was due), for zmqswarm (Client, `zs`'s Router, Client) and for the raw pyzmq floor (DEALER, a
Python ROUTER loop that only forwards, DEALER). Each process reads the monotonic clock (one
clock for every process of a host) at the same points of both paths, keyed by the message's
due time, the first 8 bytes of its payload:

    late          due -> the send call starts (the pacer's sleep: every path pays it)
    sender        the send call, from start to return
    to router     the call returned -> the router has read the frame's routing id (the
                  sender's libzmq I/O thread, the router's, and the router's thread woken)
    router        the frame read -> its delivery handed to libzmq (decode, decide, encode)
    hand-off      the delivery's send calls into libzmq
    to recipient  handed -> the recipient has the frame (two I/O threads, a wake-up, the
                  read; a Client's, until it feeds the frame to its core)
    recipient     has it -> the call returns the message (decode, hand over)

The zmqswarm router is probed by wrapping the transport calls its loop makes (``recv_parts``
for a turn's first frame, ``recv_routed`` for the next, ``send_routed`` for every send), the
recipient by wrapping its core's ``receive``; the raw loop and sink read the clock at the same
points. A probe is a clock read and an append. A frame that was read after an earlier one
(the router or the recipient busy with that) counts as read when its reader turned to it: the
wait before that is in the wire segment. A message is counted where every probe saw it,
in that order: the rest (a second message of one Deliver) are left out, and counted.
Percentiles are of each segment alone (they do not add up to the total's), median of the
runs; the last column is zmqswarm's p50 minus the floor's.
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import zmq

from bench._hist import Histogram
from bench._procs import (
    CTX,
    SINK,
    _reap,
    endpoint,
    median,
    raw_sink_socket,
    wait_path,
    write_json,
)
from bench.latency import STAMP, _paced, _precise_sleep

SEGMENTS = ("late", "sender", "to router", "router", "hand-off", "to recipient", "recipient")
PCTS = (50, 90, 99)
Probes = dict[str, list[tuple[int, ...]]]  # per process: (due, clock readings...) a message


def _due_of(payload: bytes) -> int:
    return int(STAMP.unpack_from(payload)[0])


# -- zmqswarm -------------------------------------------------------------------------------


def _zs_router(url: str, q: Any) -> None:
    import zmqswarm.router.loop as loop

    clock = time.monotonic_ns
    read: list[tuple[int, ...]] = []
    handed: list[tuple[int, ...]] = []
    from zmqswarm.transport import recv_parts, recv_routed, send_routed

    names = vars(loop)  # the loop calls the transport's functions by the names it imported

    def probed_recv(sock: zmq.Socket[bytes], flags: int = 0) -> list[bytes]:
        t = clock()
        parts = recv_parts(sock, flags)
        if len(parts) > 1:  # a Send: the first payload leads its last part, packed or not
            read.append((_due_of(parts[-1]), t))
        return parts

    def probed_take(sock: zmq.Socket[bytes], flags: int = 0) -> tuple[bytes, list[bytes]]:
        t = clock()  # a later frame of a busy turn: it waited from here at most
        identity, parts = recv_routed(sock, flags)
        if len(parts) > 1:
            read.append((_due_of(parts[-1]), t))
        return identity, parts

    def probed_send(sock: zmq.Socket[bytes], identity: bytes, parts: list[bytes]) -> None:
        t = clock()
        send_routed(sock, identity, parts)
        if len(parts) > 1:  # a Deliver (receipts are one part)
            handed.append((_due_of(parts[-1]), t, clock()))

    names.update(recv_parts=probed_recv, recv_routed=probed_take, send_routed=probed_send)
    router = loop.Router([url])
    router.install_signal_handlers()
    router.run()
    q.put({"read": read, "handed": handed})


def _zs_sink(url: str, n: int, q: Any) -> None:
    from zmqswarm.client.sync import Client

    clock = time.monotonic_ns
    with Client("sink", router=url) as client:
        core = client._core
        read: dict[int, int] = {}
        receive = core.receive

        def probed_receive(parts: list[bytes], now: float) -> None:
            if len(parts) > 1:  # a Deliver: its first payload leads its last part
                read[_due_of(parts[-1])] = clock()
            receive(parts, now)

        core.receive = probed_receive  # type: ignore[method-assign]
        q.put("ready")
        got = []
        for _ in range(n):
            due = _due_of(client.recv(timeout=30).payload)
            got.append((due, read.get(due, 0), clock()))
        q.put(got)


def zmqswarm(rate: int, seconds: float, size: int) -> Probes:
    from zmqswarm.client.sync import Client

    n = int(rate * seconds)
    url = endpoint("hops")
    q: Any = CTX.Queue()
    router = CTX.Process(target=_zs_router, args=(url, q))
    router.start()
    wait_path(url)
    sink = CTX.Process(target=_zs_sink, args=(url, n + 1, q))
    sink.start()
    assert q.get(timeout=30) == "ready"
    try:
        with Client("source", router=url) as client:
            client.send("sink", STAMP.pack(0)).wait("accepted")  # session up before the clock
            sent = _send_probed(lambda p: client.send("sink", p), rate, seconds, size)
        got = q.get(timeout=60)[1:]
        os.kill(router.pid or 0, signal.SIGTERM)
        router_probes = q.get(timeout=30)
    finally:
        _reap(sink, router)
    return {"sent": sent, **router_probes, "got": got}


# -- the raw floor ----------------------------------------------------------------------------


def _raw_router(url: str, n: int, q: Any) -> None:
    """bench._procs.ceiling_router's loop, with the probes."""
    clock = time.monotonic_ns
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.bind(url)
    while sock.recv_multipart() != [SINK, b""]:
        pass  # the source starts once the sink is ready: nothing comes before its hello
    recv, send, more = sock.recv, sock.send, zmq.SNDMORE
    read, handed = [], []
    for _ in range(n):
        recv()  # the sender's identity
        t = clock()
        to = recv()
        payload = recv()
        due = _due_of(payload)
        read.append((due, t))
        t = clock()
        send(to, more)
        send(payload)
        handed.append((due, t, clock()))
    q.put({"read": read, "handed": handed})
    sock.close()
    ctx.term()


def _raw_sink(url: str, n: int, q: Any) -> None:
    clock = time.monotonic_ns
    ctx, sock = raw_sink_socket(url)
    q.put("ready")
    got = []
    for _ in range(n):
        payload = sock.recv()
        read = clock()
        got.append((_due_of(payload), read, clock()))
    q.put(got)
    sock.close()
    ctx.term()


def raw(rate: int, seconds: float, size: int) -> Probes:
    n = int(rate * seconds)
    url = endpoint("hops-raw")
    q: Any = CTX.Queue()
    router = CTX.Process(target=_raw_router, args=(url, n, q))
    router.start()
    wait_path(url)
    sink = CTX.Process(target=_raw_sink, args=(url, n, q))
    sink.start()
    assert q.get(timeout=30) == "ready"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    src = ctx.socket(zmq.DEALER)
    src.connect(url)
    more = zmq.SNDMORE

    def send(payload: bytes) -> None:
        src.send(SINK, more)
        src.send(payload)

    try:
        sent = _send_probed(send, rate, seconds, size)
        first, second = q.get(timeout=60), q.get(timeout=60)
    finally:
        _reap(sink, router)
        src.close(0)
        ctx.term()
    router_probes, got = (first, second) if isinstance(first, dict) else (second, first)
    return {"sent": sent, **router_probes, "got": got}


# -- the segments ---------------------------------------------------------------------------


def _send_probed(
    send: Callable[[bytes], object], rate: int, seconds: float, size: int
) -> list[tuple[int, ...]]:
    clock = time.monotonic_ns
    sent: list[tuple[int, ...]] = []

    def probed(payload: bytes) -> None:
        t = clock()
        send(payload)
        sent.append((_due_of(payload), t, clock()))

    _paced(probed, rate, seconds, size)
    return sent


def segments(probes: Probes, warmup: int) -> tuple[dict[str, list[int]], int]:
    """Each counted message's segments in ns, and how many messages were left out."""
    read = {r[0]: r[1] for r in probes["read"]}
    handed = {due: (t0, t1) for due, t0, t1 in probes["handed"]}
    got = {due: (read_there, t) for due, read_there, t in probes["got"]}
    out: dict[str, list[int]] = {name: [] for name in (*SEGMENTS, "total")}
    left_out = 0
    for due, called, returned in probes["sent"][warmup:]:
        if due not in read or due not in handed or due not in got:
            left_out += 1
            continue
        r, (h0, h1), (taken, back) = read[due], handed[due], got[due]
        points = (due, called, returned, r, h0, h1, taken, back)
        if any(a > b for a, b in zip(points, points[1:], strict=False)):
            left_out += 1  # a later message of one Deliver (no probe of its own read)
            continue
        for name, a, b in zip(SEGMENTS, points, points[1:], strict=False):
            out[name].append(b - a)
        out["total"].append(back - due)
    return out, left_out


def _percentiles(values: list[int]) -> dict[int, float]:
    """PCTS of ``values`` (ns) in us, from the benches' histogram; NaN if there are none."""
    if not values:
        return {p: float("nan") for p in PCTS}
    hist = Histogram()
    for ns in values:
        hist.record(ns)
    return {p: hist.percentile(p) / 1000 for p in PCTS}


PATHS: dict[str, Callable[[int, float, int], Probes]] = {"raw pyzmq": raw, "zmqswarm": zmqswarm}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rate", type=int, default=5000, help="offered messages per second")
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=3, help="runs of each path, taking turns")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--json", default="bench/results/hops.json")
    args = ap.parse_args()
    if args.seconds <= 1:
        ap.error("--seconds must be more than the 1 s warm-up, which is not counted")
    _precise_sleep()
    warmup = args.rate  # the first second
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
    for run in range(args.runs):
        for name, path in PATHS.items() if run % 2 == 0 else reversed(PATHS.items()):
            segs, left_out = segments(path(args.rate, args.seconds, args.size), warmup)
            pcts = {s: _percentiles(v) for s, v in segs.items()}
            counted = len(segs["total"])
            results[name].append({"pcts": pcts, "counted": counted, "left_out": left_out})
            print(f"run {run + 1}/{args.runs} {name}: {counted:,} counted, {left_out:,} left out")
    med = {
        name: {
            s: {p: median([r["pcts"][s][p] for r in runs]) for p in PCTS}
            for s in (*SEGMENTS, "total")
        }
        for name, runs in results.items()
    }
    print(
        f"\n{args.rate:,} msg/s offered, {args.size} B, {args.seconds:g} s a run,"
        f" medians of {args.runs} runs, us:"
    )
    print(
        f"{'segment':14s}"
        + "".join(f"{name + ' p' + str(p):>16s}" for name in PATHS for p in PCTS)
        + f"{'p50 +':>10s}"
    )
    for s in (*SEGMENTS, "total"):
        row = "".join(f"{med[name][s][p]:16,.1f}" for name in PATHS for p in PCTS)
        print(f"{s:14s}{row}{med['zmqswarm'][s][50] - med['raw pyzmq'][s][50]:+10.1f}")
    write_json(
        args.json,
        {
            "args": vars(args),
            "runs": results,
            "medians": med,
            "at": time.strftime("%Y-%m-%d %H:%M"),
        },
    )


if __name__ == "__main__":
    main()
