"""`python -m bench.throughput`: messages per second through a router, zmqswarm against a raw
pyzmq ceiling measured in the same run (this machine is shared and noisy: read the ratio).

(a) ceiling: DEALER -> Python ROUTER (fixed-arity recv/send) -> DEALER. No receipts, no acks.
(b) zmqswarm: Client -> zs router -> Client, each in its own process, with receipts, delivery
    acks and dedup; the clock runs from the first message received to the last.
(c) with --stores, (b) again with the sender on a spool and the sink on a state (files in a
    fresh temp dir, default fsync_every): what resuming after a kill costs.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from typing import Any

import zmq

from bench._procs import median, raw_path, raw_sink_socket, write_json, zs_path


def _ceiling_sink(url: str, n: int, q: Any) -> None:
    ctx, sock = raw_sink_socket(url)
    q.put("ready")
    sock.recv()
    start = time.perf_counter()
    for _ in range(n - 1):
        sock.recv()
    q.put((n - 1) / (time.perf_counter() - start))


def ceiling(size: int, n: int) -> float:
    with raw_path(n, _ceiling_sink) as (src, q, _):
        payload = b"x" * size
        send, more = src.send, zmq.SNDMORE
        for _ in range(n):
            send(b"sink", more)
            send(payload)
        rate: float = q.get(timeout=120)
    return rate


def _zs_sink(url: str, n: int, q: Any, state: str | None = None) -> None:
    from zmqswarm.client.sync import Client

    with Client("sink", router=url, state=state) as client:
        q.put("ready")
        client.recv(timeout=30)
        start = time.perf_counter()
        for _ in range(n - 1):
            client.recv(timeout=30)
        q.put((n - 1) / (time.perf_counter() - start))


def zmqswarm(
    size: int, n: int, batch: int, stores: bool = False, journal: str | None = None
) -> float:
    """Messages a second through a zs router (journaled in ``journal`` if given)."""
    from zmqswarm.client.sync import Client

    n -= n % batch  # whole batches only: the sink counts exactly what is sent
    payload = b"x" * size
    where = tempfile.mkdtemp(prefix="zs-bench-stores-") if stores else ""
    sink = functools.partial(_zs_sink, state=f"{where}/sink.state") if stores else _zs_sink
    with zs_path(n, sink, journal) as (url, q, _):
        client = Client("source", router=url, spool=f"{where}/source.spool" if stores else None)
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
        rate: float = q.get(timeout=300)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000, help="messages per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", default="bench/results/throughput.json")
    ap.add_argument("--stores", action="store_true", help="also with spool= and state=")
    args = ap.parse_args()
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
