"""Redis Streams as mailboxes: Debian's ``redis-server`` on loopback TCP, started here with a
temp dir and a free port; redis-py (with hiredis). A stream per recipient and one consumer
group on it. A publish is a pipelined XADD, acknowledged by the entry ID that comes back
(``window`` XADDs a round trip); a recipient reads with XREADGROUP (``batch`` entries at
most) and XACKs what it took in the same round trip as its next read. Acked entries stay in
the stream (no XDEL: Redis's best case; the run's streams fit in memory).

Variants: "" (no persistence: no RDB, no AOF) and "everysec" (AOF, ``appendfsync
everysec``: what was acknowledged may be lost in the last second of a crash)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from zmqswarm.bench.machine import free_port, wait_port
from zmqswarm.bench.spec import Broker, Spec

NAME = "Redis Streams"
VARIANTS = ("", "everysec")
GROUP = "g"


def available() -> str | None:
    """Why this system cannot run here, or None."""
    if shutil.which("redis-server") is None:
        return "redis-server is not installed (make bench-deps)"
    try:
        import redis  # noqa: F401
    except ImportError:
        return "redis-py is not installed (make bench-deps)"
    return None


def _stream(r: int) -> str:
    return f"mb:{r}" if r >= 0 else "mb:all"  # -1: the fan-out stream, a group a recipient


@contextmanager
def broker(spec: Spec, workdir: str) -> Iterator[Broker]:
    if spec.variant not in VARIANTS:
        raise ValueError(f"Redis variants: {VARIANTS}, not {spec.variant!r}")
    port = free_port()
    persist = ["--appendonly", "yes", "--appendfsync", "everysec"]
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir]
    args += ["--save", "", "--daemonize", "no", "--loglevel", "warning"]
    args += persist if spec.variant == "everysec" else ["--appendonly", "no"]
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, alive=lambda: proc.poll() is None)
        yield Broker(f"{port}", [proc.pid], version.stdout.split(" sha=")[0].strip())
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _connect(address: str) -> Any:
    import redis

    return redis.Redis(host="127.0.0.1", port=int(address), socket_keepalive=True)


def prepare(spec: Spec, address: str) -> None:
    conn = _connect(address)
    for r in range(spec.recipients):
        if spec.fanout:
            conn.xgroup_create(_stream(-1), f"{GROUP}{r}", id="0", mkstream=True)
        else:
            conn.xgroup_create(_stream(r), GROUP, id="0", mkstream=True)
    conn.close()


class Sender:
    def __init__(self, spec: Spec, address: str, index: int) -> None:
        self.conn = _connect(address)
        self.conn.ping()
        # XADDs a round trip: the window, or 64 MiB of payloads (64 KiB: 1,024 a pipeline)
        self.chunk = max(1, min(spec.window, (64 << 20) // spec.size))
        self.streams = [_stream(r) for r in range(spec.recipients)] + [_stream(-1)]

    def publish(self, items: list[tuple[int, bytes]]) -> None:
        pipe = self.conn.pipeline(transaction=False)
        streams = self.streams
        for r, payload in items:
            pipe.xadd(streams[r], {"d": payload})
        ids = pipe.execute()
        if len(ids) != len(items):
            raise RuntimeError(f"{len(items)} XADDs, {len(ids)} IDs back")

    def finish(self) -> int:
        return 0  # every XADD was answered in publish()

    def close(self) -> None:
        self.conn.close()


class Recipient:
    def __init__(self, spec: Spec, address: str, index: int) -> None:
        self.conn = _connect(address)
        self.conn.ping()
        self.stream = _stream(-1 if spec.fanout else index)
        self.group = f"{GROUP}{index}" if spec.fanout else GROUP
        self.consumer = f"c{index}"
        self.batch = spec.batch
        self.unacked: list[bytes] = []

    def take(self, timeout: float) -> list[bytes]:
        pipe = self.conn.pipeline(transaction=False)
        if self.unacked:
            pipe.xack(self.stream, self.group, *self.unacked)
        pipe.xreadgroup(
            self.group,
            self.consumer,
            {self.stream: ">"},
            count=self.batch,
            block=int(timeout * 1000),
        )
        replies = pipe.execute()
        self.unacked = []
        got = replies[-1]
        if not got:
            return []
        entries = got[0][1] if isinstance(got, list) else next(iter(got.values()))[0]
        self.unacked = [entry_id for entry_id, _ in entries]
        return [fields[b"d"] for _, fields in entries]

    def finish(self) -> None:
        if self.unacked:
            self.conn.xack(self.stream, self.group, *self.unacked)
            self.unacked = []

    def close(self) -> None:
        self.conn.close()


class Idle:
    """A connection that has said PING; then nothing."""

    def __init__(self, spec: Spec, address: str, index: int) -> None:
        self.conn = _connect(address)
        self.conn.ping()

    def close(self) -> None:
        self.conn.close()
