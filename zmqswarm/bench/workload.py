"""One workload against one messaging system, end to end, in processes of their own.

Senders and recipients each run in a worker process (several per process, one thread each,
when there are many); the broker is whatever the system starts. Every message carries
(sender, recipient, seq, scheduled time) in its first 16 bytes, and each recipient checks
that every message of every pair came once and in order: the counts are part of the result,
never dropped. Two modes:

- closed loop (``rate`` 0): each sender sends ``count`` messages as fast as the system's
  producer window allows; messages a second are those delivered, from the start signal to
  the last delivery or the last publish acknowledgement, whichever is later.
- open loop (``rate`` > 0): the senders share ``rate`` msg/s for ``seconds``, each message
  stamped with the time it was *due*; a late sender's delay counts as latency (no
  coordinated omission). Percentiles come from ``Histogram`` over what came after ``warmup``.

CPU is counted in every process, all threads, kernel time included: each worker counts its
own from the start signal to its end, the parent counts the broker's and the idle peers'.

What a system provides, and ``Spec``: spec.py; the workers: worker.py.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import queue
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from .hist import Histogram
from .machine import cpu_ns
from .spec import CTX, Broker, Spec
from .worker import serve

PCTS = (50.0, 90.0, 99.0, 99.9)
IDLE_PER_PROCESS = 250


# -- in the parent -------------------------------------------------------------------------


def _groups(n: int, per: int) -> list[list[int]]:
    per = max(1, per)
    return [list(range(i, min(n, i + per))) for i in range(0, n, per)]


def _summary(latencies: list[int]) -> dict[str, float]:
    if not latencies:
        return {f"p{p:g}": math.nan for p in PCTS} | {"max": math.nan}
    hist = Histogram()
    for ns in latencies:
        hist.record(ns)
    return {f"p{p:g}": hist.percentile(p) / 1000 for p in PCTS} | {"max": hist.max / 1000}


def label(spec: Spec) -> str:
    name = str(getattr(importlib.import_module(spec.system), "NAME", spec.system))
    return f"{name} ({spec.variant})" if spec.variant else name


def run(
    spec: Spec,
    progress: Callable[[int, int], None] | None = None,
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Run ``spec`` once: start the broker, the workers, the clock; check and count."""
    mod = importlib.import_module(spec.system)
    workdir = tempfile.mkdtemp(prefix="zs-bench-")
    procs: list[Any] = []
    try:
        with mod.broker(spec, workdir) as broker:
            mod.prepare(spec, broker.address)
            return _run(spec, broker, procs, progress, timeout)
    finally:
        for p in procs:
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        shutil.rmtree(workdir, ignore_errors=True)


def _run(
    spec: Spec,
    broker: Broker,
    procs: list[Any],
    progress: Callable[[int, int], None] | None,
    timeout: float,
) -> dict[str, Any]:
    q: Any = CTX.Queue()
    go: Any = CTX.Event()
    t0: Any = CTX.Value("q", 0, lock=False)
    layout = [("idle", g) for g in _groups(spec.idle, IDLE_PER_PROCESS)]
    layout += [("recv", g) for g in _groups(spec.recipients, spec.per_process)]
    layout += [("send", g) for g in _groups(spec.senders, spec.per_process)]
    for role, group in layout:
        args = (spec, role, group, broker.address, q, go, t0)
        proc = CTX.Process(target=serve, args=args, daemon=True)
        proc.start()
        procs.append(proc)
    for _ in layout:
        msg = _get(q, 180, procs)
        if msg[0] == "error":
            raise RuntimeError(f"a worker failed to start: {'; '.join(msg[2])}")
    idle_pids = [p.pid for p, (role, _) in zip(procs, layout, strict=True) if role == "idle"]
    watched = broker.pids + idle_pids
    before = {pid: cpu_ns(pid) for pid in watched}
    start = t0.value = time.monotonic_ns()
    go.set()
    total = spec.total()
    delivered = 0
    done: list[tuple[str, list[dict[str, Any]], int, list[str]]] = []
    deadline = time.monotonic() + timeout
    working = sum(1 for role, _ in layout if role != "idle")
    while len(done) < working:
        msg = _get(q, max(1.0, deadline - time.monotonic()), procs)
        if msg[0] == "progress":
            delivered += msg[1]
            if progress:
                progress(delivered, total)
        elif msg[0] == "done":
            done.append((msg[1], msg[3], msg[4], msg[5]))
    after = {pid: cpu_ns(pid) for pid in watched}
    t0.value = -1  # idle peers leave
    for _ in idle_pids:
        msg = _get(q, 60, procs)
        while msg[0] != "done":
            msg = _get(q, 60, procs)
    return _result(spec, broker, start, done, before, after, idle_pids)


def _get(q: Any, timeout: float, procs: list[Any]) -> Any:
    """The next word from a worker; RuntimeError if every worker died, TimeoutError if none
    came within ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return q.get(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                raise RuntimeError("every worker process exited") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"no word from the workers within {timeout:.0f} s") from None


def _result(
    spec: Spec,
    broker: Broker,
    start: int,
    done: list[tuple[str, list[dict[str, Any]], int, list[str]]],
    before: dict[int, int],
    after: dict[int, int],
    idle_pids: list[int],
) -> dict[str, Any]:
    sends = [r for role, rs, _, _ in done if role == "send" for r in rs if r]
    recvs = [r for role, rs, _, _ in done if role == "recv" for r in rs if r]
    errors = [e for _, _, _, es in done for e in es]
    cpu = {"senders": 0, "recipients": 0, "broker": 0, "idle": 0}
    for role, _, ns, _ in done:
        cpu["senders" if role == "send" else "recipients"] += ns
    for pid in before:
        cpu["idle" if pid in idle_pids else "broker"] += max(0, after[pid] - before[pid])
    sent = sum(r["sent"] for r in sends)
    delivered = sum(r["delivered"] for r in recvs)
    expected = spec.total()  # not the recipients' sum: one may have failed
    ends = [r["end"] for r in sends + recvs]
    elapsed = (max(ends) - start) / 1e9 if ends else math.nan
    latencies = [ns for r in recvs for ns in r["latencies"]]
    counts = {
        "sent": sent,
        "expected": expected,
        "delivered": delivered,
        "missing": expected - delivered,
        "duplicates": sum(r["duplicates"] for r in recvs),
        "out_of_order": sum(r["out_of_order"] for r in recvs),
        "foreign": sum(r["foreign"] for r in recvs),
        "unacked": sum(r["unacked"] for r in sends),
    }
    ok = not errors and counts["missing"] == counts["duplicates"] == 0
    ok = ok and counts["out_of_order"] == counts["foreign"] == counts["unacked"] == 0
    per_msg = {k: v / 1000 / delivered if delivered else math.nan for k, v in cpu.items()}
    return {
        "system": label(spec),
        "spec": dataclasses.asdict(spec) | {"curve": spec.curve is not None},
        "version": broker.version,
        "broker_cpu_counted": bool(broker.pids),
        **counts,
        "ok": ok,
        "errors": errors,
        "seconds": elapsed,
        "msgs_per_s": delivered / elapsed if elapsed > 0 else math.nan,
        "cpu_us_per_msg": sum(per_msg.values()),
        "cpu_us_per_msg_by_role": per_msg,
        "latency_us": _summary(latencies) if spec.rate > 0 else {},
        "latency_samples": len(latencies),
    }


def spec_grid(base: Spec, **axes: list[Any]) -> Iterator[Spec]:
    """Every combination of ``axes`` (field name -> values) over ``base``."""
    keys = list(axes)
    if not keys:
        yield base
        return
    first, rest = keys[0], {k: axes[k] for k in keys[1:]}
    for value in axes[first]:
        yield from spec_grid(dataclasses.replace(base, **{first: value}), **rest)


__all__ = ["label", "run", "spec_grid"]
