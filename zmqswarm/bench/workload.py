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

A system is a module (named by ``Spec.system``) with:

- ``broker(spec, workdir)``: a context manager, in the parent, yielding a ``Broker``;
- ``prepare(spec, address)``: in the parent, once the broker is up (streams, groups);
- ``Sender(spec, address, index)``: ``chunk`` (items a ``publish`` call takes),
  ``publish(items)`` (list of (recipient, payload), recipient -1: every recipient, as the
  system fans out; may block on the producer window),
  ``finish()`` (waits for every publish acknowledgement; returns how many never came),
  ``close()``;
- ``Recipient(spec, address, index)``: ``take(timeout)`` (payloads handed over, acked
  as the system's consumers ack: at latest on the next call), ``finish()``, ``close()``;
- optionally ``Idle(spec, address, index)`` with ``close()``: a connected peer that does
  nothing (``Spec.idle``).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import multiprocessing as mp
import os
import queue
import shutil
import socket
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .hist import Histogram

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

HEADER = struct.Struct("<HHIq")  # sender, recipient, seq of the pair, due time (ns, 0: none)
ALL = 0xFFFF  # the recipient of a fan-out message (and -1 its index in a publish)
CTX = mp.get_context("spawn")  # a clean interpreter per worker, as deployments have
PCTS = (50.0, 90.0, 99.0, 99.9)
IDLE_PER_PROCESS = 250
PROFILE = "ZS_BENCH_PROFILE"  # a directory: profile every endpoint (and zmqswarm's router)


@dataclass(frozen=True)
class Spec:
    """What to run. ``count`` is per sender (closed loop); ``window`` is the producer's
    unacknowledged publishes, ``batch`` the consumer's; ``address`` an existing broker, and
    ``curve`` the CURVE keys zmqswarm's peers reach it with (a result says only whether
    there were any: never the keys)."""

    system: str
    variant: str = ""
    senders: int = 1
    recipients: int = 1
    count: int = 50_000
    size: int = 64
    rate: float = 0.0
    seconds: float = 5.0
    warmup: float = 1.0
    window: int = 1024
    batch: int = 256
    idle: int = 0
    fanout: bool = False  # every message to every recipient (publish to ALL, one a message)
    per_process: int = 10  # endpoints of one role a worker process hosts, beyond one
    address: str = ""
    stall: float = 20.0  # a recipient that gets nothing new for this long gives up, and says
    tag: str = field(default_factory=lambda: os.urandom(3).hex())  # unique peer names
    curve: ClientKeys | None = field(default=None, repr=False, compare=False)

    def per_sender(self) -> int:
        if self.rate > 0:
            return max(1, int(self.rate * self.seconds / self.senders))
        return self.count

    def total(self) -> int:
        """Deliveries the run should make, to all recipients together."""
        return self.per_sender() * self.senders * (self.recipients if self.fanout else 1)

    def expected(self, sender: int, recipient: int) -> int:
        """Messages sender ``sender`` sends to ``recipient``: its j-th goes to (sender + j) % M,
        or to all of them with ``fanout``."""
        n, m = self.per_sender(), self.recipients
        if self.fanout:
            return n
        return n // m + (1 if (recipient - sender) % m < n % m else 0)


@dataclass
class Broker:
    address: str
    pids: list[int]  # whose CPU counts as the broker's (empty: not ours to count)
    version: str = ""


class SenderLike(Protocol):
    chunk: int

    def publish(self, items: list[tuple[int, bytes]]) -> None: ...
    def finish(self) -> int: ...
    def close(self) -> None: ...


class RecipientLike(Protocol):
    def take(self, timeout: float) -> list[bytes]: ...
    def finish(self) -> None: ...
    def close(self) -> None: ...


def free_port() -> int:
    """A TCP port free on loopback right now (the broker binds it just after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 15.0, alive: Callable[[], bool] | None = None) -> None:
    """Until something accepts on 127.0.0.1:``port``; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if alive is not None and not alive():
                raise RuntimeError(f"the broker for port {port} exited") from None
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.02)


def cpu_ns(pid: int) -> int:
    """CPU time of every thread of process ``pid`` so far (utime + stime), in ns; 0 where
    /proc does not say."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return (int(fields[11]) + int(fields[12])) * (1_000_000_000 // os.sysconf("SC_CLK_TCK"))


def precise_sleep() -> None:
    """Linux wakes this thread's sleeps within 1 us, not its default 50 us of timer slack:
    a paced sender's lateness would count as every system's latency."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(29, 1000, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        pass


# -- in a worker -------------------------------------------------------------------------


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


def _worker(
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
        proc = CTX.Process(target=_worker, args=args, daemon=True)
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


__all__ = ["Broker", "Spec", "label", "run", "spec_grid"]
