"""Shared plumbing for the benchmarks: processes, endpoints, and the raw pyzmq ceiling."""

from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from zmqswarm.keys import ClientKeys, ServerKeys

CTX = mp.get_context("spawn")  # a clean interpreter per peer, like real deployments
SINK = b"sink"  # the raw sink's routing id
ROUTER_CPUS: list[int] = []  # pin each path's router process here (bench.latency --router-cpu)
SINK_CPUS: list[int] = []  # and each path's sink process here (--sink-cpu)
# What this process may use before any pinning: a child of a pinned bench (--source-cpu)
# would inherit the pin, so unpinned children are handed this set back.
ALL_CPUS: list[int] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def endpoint(tag: str) -> str:
    return f"ipc://{tempfile.mkdtemp(prefix='zs-bench-')}/{tag}"


def wait_path(url: str, timeout: float = 10.0) -> None:
    path = Path(url[len("ipc://") :])
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} never appeared")
        time.sleep(0.005)


def ceiling_router(
    url: str,
    n: int,
    cpus: list[int] | None = None,
    curve: ServerKeys | None = None,
    ready: Any = None,
    report: Any = None,
) -> None:
    """The fastest honest Python forwarder: fixed-arity recv/send, no decode, no acks.

    It starts forwarding once the sink has said hello (``raw_sink_socket``): before its
    connection is up, ROUTER_MANDATORY would refuse a message for it, and the run would
    hang. Whatever the source sent before that is forwarded first. ``curve``: a CURVE
    server (no ZAP handler: libzmq lets every key in); ``ready``: gets the bound endpoint;
    ``report``: gets (CPU ns, its I/O thread's) from the sink's hello to the last forward
    (read here: its I/O thread ends with it)."""
    if cpus:
        from zmqswarm.router.endpoints import pin_to_cpus

        pin_to_cpus(cpus)  # as `zs router --cpu` does: the same tuning on both paths
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # block on a full pipe instead of dropping
    if curve is not None:
        sock.curve_server, sock.curve_secretkey = True, curve.secret
    sock.bind(url)
    if ready is not None:
        ready.put(sock.getsockopt_string(zmq.LAST_ENDPOINT))
    early = []
    while (parts := sock.recv_multipart()) != [SINK, b""]:
        early.append(parts)
    me = os.getpid()
    cpu, io = cpu_ns(me), io_thread_ns(me)
    recv, send, more = sock.recv, sock.send, zmq.SNDMORE
    for _, to, payload in early:
        send(to, more)
        send(payload)
    for _ in range(n - len(early)):
        recv()  # sender identity
        to = recv()
        payload = recv()
        send(to, more)
        send(payload)
    if report is not None:
        report.put((cpu_ns(me) - cpu, io_thread_ns(me) - io))
    sock.close()
    ctx.term()


def raw_sink_socket(
    url: str, curve: ClientKeys | None = None
) -> tuple[zmq.Context[zmq.Socket[bytes]], zmq.Socket[bytes]]:
    """The raw sink's DEALER, connected (a CURVE client if ``curve``), its hello to
    ``ceiling_router`` on the way."""
    from zmqswarm.keys import secure_client

    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.ROUTING_ID, SINK)
    secure_client(sock, curve)
    sock.connect(url)
    sock.send(b"")
    return ctx, sock


def _pinned(cpus: list[int], target: Callable[..., None], *args: Any) -> None:
    """Run ``target(*args)`` in this (child) process on ``cpus``, before it makes a socket."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    target(*args)


def run_zs_router(
    url: str,
    cpus: list[int] | None = None,
    data_dir: str | None = None,
    curve: Curve | None = None,
    ready: Any = None,
) -> None:
    """A zs router on ``url`` (a CURVE server if ``curve``); once bound, its endpoint goes
    on ``ready`` if given (a tcp port ``*`` is known only then)."""
    from zmqswarm.router.endpoints import pin_to_cpus
    from zmqswarm.router.loop import Router

    if cpus:
        pin_to_cpus(cpus)

    router = Router(
        [url],
        data_dir=Path(data_dir) if data_dir else None,
        curve=curve.router if curve else None,
        allow=Path(curve.allow) if curve else None,
    )
    router.install_signal_handlers()
    if ready is not None:
        ready.put(router.endpoints[0])
    router.run()


@dataclass(frozen=True)
class Curve:
    """A CURVE run's keys, made with zmqswarm.keys as `zs keys` makes them: the router's pair
    and its allow list (a directory), and each peer's ClientKeys by name."""

    router: ServerKeys
    allow: str
    peers: dict[str, ClientKeys]


def curve_keys(*names: str) -> Curve:
    """Fresh keys for the router and for peers ``names`` (each let in), in a temp dir."""
    from zmqswarm.keys import client_keys, load_secret, new_keys, trust

    where = Path(tempfile.mkdtemp(prefix="zs-bench-keys-"))
    for name in ("router", *names):
        new_keys(name, where)
    peers = {}
    for name in names:
        trust(where / f"{name}.key", where / "allow")
        keys = client_keys(where / f"{name}.key_secret", where / "router.key")
        assert keys is not None
        peers[name] = keys
    router = ServerKeys(*load_secret(where / "router.key_secret"))
    return Curve(router, str(where / "allow"), peers)


def median(values: list[float]) -> float:
    return statistics.median(values)


def write_json(path: str, data: Any) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2))


_NS_PER_TICK = 1_000_000_000 // (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def cpu_ns(pid: int) -> int:
    """CPU time that every thread of process ``pid`` has run so far, in ns, kernel time and
    threads that already exited included; 0 where /proc does not say (not Linux). Read while
    the process lives. Comes from ``utime + stime`` of ``/proc/<pid>/stat``: the kernel scales
    both to the group's exact run time, in clock ticks (10 ms: 0.25 us a message over 40k).
    Summing the live threads' ``task/*/schedstat`` instead missed the raw paths' I/O threads,
    which end as their last message passes, just before the reading (101 against 130 us)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name in () may hold spaces
    except OSError:
        return 0
    return (int(fields[11]) + int(fields[12])) * _NS_PER_TICK


def io_thread_ns(pid: int) -> int:
    """CPU time, in ns, that the live libzmq I/O threads (``ZMQbg/IO/N``) of process ``pid``
    have run so far: where libzmq frames, and with CURVE encrypts, what the process sends
    and receives. 0 where /proc does not say."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                name, fields = f.read().split("(", 1)[1].rsplit(")", 1)
        except OSError:
            continue  # the thread ended meanwhile
        if name.startswith("ZMQbg/IO"):
            stat = fields.split()
            total += (int(stat[11]) + int(stat[12])) * _NS_PER_TICK
    return total


def wakeups(pid: int) -> int:
    """Voluntary context switches of every live thread of process ``pid`` so far: each is a
    thread going to sleep, so each costs a wake-up later. At a fixed rate on two cores, what
    a message costs is mostly these. 0 where /proc does not say."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue  # the thread ended meanwhile
    return total


def _reap(*procs: Any, timeout: float = 30.0) -> None:
    """Join the path's processes; kill any still running after ``timeout``. A run that failed
    (a queue timeout, a dead router) otherwise left its sink waiting for messages that never
    came, and the bench hung at exit joining it (seen once, in the ceiling path)."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    for proc in procs:
        if proc.is_alive():
            proc.kill()
            proc.join(5)


@contextmanager
def raw_path(
    n: int,
    sink: Callable[..., None],
    *,
    tcp: bool = False,
    curve: Curve | None = None,
    report: Any = None,
) -> Iterator[tuple[zmq.Socket[bytes], Any, list[int]]]:
    """The ceiling's processes: ``ceiling_router`` forwarding ``n`` messages (on
    tcp://127.0.0.1 if ``tcp``, else ipc; a CURVE server if ``curve``), and ``sink(url, n,
    q)`` (which puts "ready", then its result, on ``q``; with ``curve``, given the keys of
    the peer "sink" as ``curve=``; ``report``: see ``ceiling_router``). Yields (source DEALER,
    q, the pids of this process, the router and the sink)."""
    from zmqswarm.keys import secure_client

    url = "tcp://127.0.0.1:*" if tcp else endpoint("raw")
    q: Any = CTX.Queue()
    ready: Any = CTX.Queue() if tcp else None
    server = curve.router if curve else None
    args = (ALL_CPUS, ceiling_router, url, n, ROUTER_CPUS, server, ready, report)
    router = CTX.Process(target=_pinned, args=args)
    router.start()
    if ready is not None:
        url = ready.get(timeout=30)
    else:
        wait_path(url)
    if curve is not None:
        sink = functools.partial(sink, curve=curve.peers["sink"])
    consumer = CTX.Process(target=_pinned, args=(SINK_CPUS or ALL_CPUS, sink, url, n, q))
    consumer.start()
    assert q.get(timeout=30) == "ready"
    ctx = zmq.Context()
    src = ctx.socket(zmq.DEALER)
    secure_client(src, curve.peers["source"] if curve else None)
    src.connect(url)
    try:
        yield src, q, [os.getpid(), router.pid or 0, consumer.pid or 0]
    finally:
        _reap(router, consumer)
        src.close(0)
        ctx.term()


@contextmanager
def zs_path(
    n: int,
    sink: Callable[..., None],
    data_dir: str | None = None,
    *,
    tcp: bool = False,
    curve: Curve | None = None,
) -> Iterator[tuple[str, Any, list[int]]]:
    """A zs router process (journaled in ``data_dir`` if given; on tcp://127.0.0.1 if
    ``tcp``, else ipc; a CURVE server if ``curve``) and ``sink(url, n, q)`` (a zmqswarm peer
    named "sink" that puts "ready", then its result, on ``q``). Yields (router url, q, the
    pids of this process, the router and the sink)."""
    url = "tcp://127.0.0.1:*" if tcp else endpoint("zs")
    q: Any = CTX.Queue()
    ready: Any = CTX.Queue() if tcp else None
    args = (ALL_CPUS, run_zs_router, url, ROUTER_CPUS, data_dir, curve, ready)
    router = CTX.Process(target=_pinned, args=args)
    router.start()
    if ready is not None:
        url = ready.get(timeout=30)
    else:
        wait_path(url)
    consumer = CTX.Process(target=_pinned, args=(SINK_CPUS or ALL_CPUS, sink, url, n, q))
    consumer.start()
    assert q.get(timeout=30) == "ready"
    try:
        yield url, q, [os.getpid(), router.pid or 0, consumer.pid or 0]
    finally:
        _reap(consumer)
        router.terminate()
        _reap(router)
