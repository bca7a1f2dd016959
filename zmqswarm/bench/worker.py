"""In a worker process: the senders and recipients of one run, a thread each, and what each
recipient checks (``Tally``: every pair once and in order, latencies from due times)."""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from .machine import precise_sleep
from .spec import ALL, HEADER, PROFILE, RecipientLike, SenderLike, Spec

__all__ = ["Tally", "serve"]


def _profiler() -> Any:
    """A cProfile.Profile if $ZS_BENCH_PROFILE asks for one, else None."""
    if not os.environ.get(PROFILE):
        return None
    import cProfile

    return cProfile.Profile()


class Tally:
    """What one recipient got: every pair checked for once and in order."""

    def __init__(self, spec: Spec, recipient: int, since_ns: int) -> None:
        self.recipient = recipient
        self.fanout = spec.fanout
        self.want = [spec.expected(s, recipient) for s in range(spec.senders)]
        self.total = sum(self.want)
        self.seen = [bytearray(w) for w in self.want]
        self.next = [0] * spec.senders
        self.unique = self.duplicates = self.out_of_order = self.foreign = 0
        self.latencies: list[int] = []
        self.since = since_ns if spec.rate > 0 else -1  # due times before it: warm-up

    def add(self, payload: bytes, now: int) -> None:
        sender, recipient, seq, due = HEADER.unpack_from(payload)
        if recipient == ALL and self.fanout:
            recipient = self.recipient
        if recipient != self.recipient or sender >= len(self.want) or seq >= self.want[sender]:
            self.foreign += 1
            return
        seen = self.seen[sender]
        if seen[seq]:
            self.duplicates += 1
            return
        seen[seq] = 1
        self.unique += 1
        if seq != self.next[sender]:
            self.out_of_order += 1
        self.next[sender] = max(self.next[sender], seq + 1)
        if due >= self.since >= 0:
            self.latencies.append(now - due)


def _send(ep: SenderLike, spec: Spec, index: int, start: int) -> dict[str, Any]:
    n, m = spec.per_sender(), spec.recipients
    pad = b"x" * max(0, spec.size - HEADER.size)
    seqs = [0] * m
    pack = HEADER.pack

    def item(j: int, due: int) -> tuple[int, bytes]:
        if spec.fanout:
            return -1, pack(index, ALL, j, due) + pad
        r = (index + j) % m
        seq = seqs[r]
        seqs[r] = seq + 1
        return r, pack(index, r, seq, due) + pad

    if spec.rate <= 0:
        chunk = max(1, ep.chunk)
        for first in range(0, n, chunk):
            ep.publish([item(j, 0) for j in range(first, min(n, first + chunk))])
    else:
        interval = spec.senders * 1e9 / spec.rate
        begin = start + 20_000_000 + index * interval / spec.senders  # senders interleaved
        j = 0
        while j < n:
            now = time.monotonic_ns()
            due = []
            while j < n and begin + j * interval <= now:
                due.append(item(j, int(begin + j * interval)))
                j += 1
            if due:
                ep.publish(due)
            if j < n:
                wait = begin + j * interval - time.monotonic_ns()
                if wait > 0:
                    time.sleep(wait / 1e9)
    unacked = ep.finish()
    return {"sent": n, "unacked": unacked, "end": time.monotonic_ns()}


def _receive(
    ep: RecipientLike, spec: Spec, index: int, start: int, report: Callable[[int], None]
) -> dict[str, Any]:
    tally = Tally(spec, index, start + int(spec.warmup * 1e9))
    last = time.monotonic_ns()
    reported, report_at = 0, last + 250_000_000
    stall = int(spec.stall * 1e9)
    add = tally.add
    while tally.unique < tally.total:
        got = ep.take(0.5)
        now = time.monotonic_ns()
        if got:
            for payload in got:
                add(payload, now)
            last = now
        elif now - last > stall:
            break
        if now >= report_at:
            report(tally.unique - reported)
            reported, report_at = tally.unique, now + 250_000_000
    report(tally.unique - reported)
    ep.finish()
    return {
        "expected": tally.total,
        "delivered": tally.unique,
        "duplicates": tally.duplicates,
        "out_of_order": tally.out_of_order,
        "foreign": tally.foreign,
        "end": last,
        "latencies": tally.latencies,
    }


def serve(
    spec: Spec, role: str, indices: list[int], address: str, q: Any, go: Any, t0: Any
) -> None:
    """A worker process: one endpoint per index, each in a thread of its own, connected
    before it says ready; all start at ``go``. With $ZS_BENCH_PROFILE set to a directory,
    each endpoint's thread runs under cProfile and leaves its stats there."""
    precise_sleep()
    mod = importlib.import_module(spec.system)
    results: list[dict[str, Any]] = [{} for _ in indices]
    errors: list[str] = []
    ready = threading.Barrier(len(indices) + 1)
    stop = threading.Event()

    def report(delta: int) -> None:
        if delta:
            q.put(("progress", delta))

    def run(k: int, index: int) -> None:
        ep: Any = None
        try:
            if role == "send":
                ep = mod.Sender(spec, address, index)
            elif role == "recv":
                ep = mod.Recipient(spec, address, index)
            else:
                ep = mod.Idle(spec, address, index)
        except BaseException as e:
            errors.append(f"{role} {index}: {e!r}")
            ready.abort()
            return
        profile = _profiler()
        try:
            ready.wait()
            go.wait()
            if profile:
                profile.enable()
            if role == "send":
                results[k] = _send(ep, spec, index, t0.value)
            elif role == "recv":
                results[k] = _receive(ep, spec, index, t0.value, report)
            else:
                stop.wait()
        except BaseException as e:
            errors.append(f"{role} {index}: {e!r}")
        finally:
            if profile:
                profile.disable()
                profile.dump_stats(f"{os.environ[PROFILE]}/{role}{index}-{os.getpid()}.prof")
            ep.close()

    threads = [
        threading.Thread(target=run, args=(k, i), daemon=True) for k, i in enumerate(indices)
    ]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        q.put(("error", os.getpid(), errors or [f"{role} workers never got ready"]))
        return
    q.put(("ready", os.getpid()))
    go.wait()
    cpu0 = time.process_time_ns()
    if role == "idle":  # connected until the parent sets t0 to -1: the run is over
        while t0.value != -1:
            time.sleep(0.05)
        stop.set()
    for t in threads:
        t.join()
    cpu = time.process_time_ns() - cpu0
    q.put(("done", role, os.getpid(), results, cpu, errors))
