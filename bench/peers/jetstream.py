"""NATS JetStream as mailboxes: Debian's ``nats-server -js`` on loopback TCP, started here
with a temp store dir and a free port; nats-py (asyncio; each endpoint has its own loop in
its own thread). One work-queue stream ``MB`` on subjects ``mb.<recipient>`` and a durable
pull consumer per recipient, filtered to its subject. A publish is acknowledged by its PubAck
(``publish_async`` with at most ``window`` awaiting theirs); a recipient fetches up to
``batch`` messages and acks the last of them (AckPolicy.ALL: one ack a batch; a work-queue
stream would forget acked messages but takes explicit acks only, one a message). Acked
messages stay in the stream, as in Redis here.

Variants: "file" (file storage; the server's default sync: written to the OS at once,
fsynced on its timer) and "memory"."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from zmqswarm.bench.machine import free_port, wait_port
from zmqswarm.bench.spec import Broker, Spec

NAME = "NATS JetStream"
VARIANTS = ("file", "memory")
STREAM = "MB"


def available() -> str | None:
    """Why this system cannot run here, or None."""
    if shutil.which("nats-server") is None:
        return "nats-server is not installed (make bench-deps)"
    try:
        import nats  # noqa: F401
    except ImportError:
        return "nats-py is not installed (make bench-deps)"
    return None


@contextmanager
def broker(spec: Spec, workdir: str) -> Iterator[Broker]:
    if spec.variant not in VARIANTS:
        raise ValueError(f"JetStream variants: {VARIANTS}, not {spec.variant!r}")
    port = free_port()
    args = ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", workdir]
    version = subprocess.run(["nats-server", "--version"], capture_output=True, text=True)
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, alive=lambda: proc.poll() is None)
        yield Broker(f"nats://127.0.0.1:{port}", [proc.pid], version.stdout.strip())
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def prepare(spec: Spec, address: str) -> None:
    import nats
    from nats.js.api import (
        AckPolicy,
        ConsumerConfig,
        RetentionPolicy,
        StorageType,
        StreamConfig,
    )

    async def setup() -> None:
        nc = await nats.connect(address)
        js = nc.jetstream()
        storage = StorageType.FILE if spec.variant == "file" else StorageType.MEMORY
        config = StreamConfig(
            name=STREAM, subjects=["mb.*"], storage=storage, retention=RetentionPolicy.LIMITS
        )
        await js.add_stream(config)
        for r in range(spec.recipients):
            await js.add_consumer(
                STREAM,
                ConsumerConfig(
                    durable_name=f"r{r}",
                    filter_subject="mb.all" if spec.fanout else f"mb.{r}",
                    ack_policy=AckPolicy.ALL,
                    max_ack_pending=max(65536, spec.batch * 4),
                    ack_wait=60,
                ),
            )
        await nc.close()

    asyncio.run(setup())


class Sender:
    chunk = 256

    def __init__(self, spec: Spec, address: str, index: int) -> None:
        import nats

        self.loop = asyncio.new_event_loop()
        self.nc: Any = self.loop.run_until_complete(nats.connect(address, pending_size=64 << 20))
        self.js = self.nc.jetstream(publish_async_max_pending=spec.window)
        self.subjects = [f"mb.{r}" for r in range(spec.recipients)] + ["mb.all"]  # -1: all
        self.failed = 0

    def _done(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.failed += 1

    def publish(self, items: list[tuple[int, bytes]]) -> None:
        async def go() -> None:
            publish, subjects, done = self.js.publish_async, self.subjects, self._done
            for r, payload in items:
                (await publish(subjects[r], payload)).add_done_callback(done)

        self.loop.run_until_complete(go())

    def finish(self) -> int:
        async def drain() -> None:
            await asyncio.wait_for(self.js.publish_async_completed(), 300)

        self.loop.run_until_complete(drain())
        return self.failed

    def close(self) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()


class Recipient:
    def __init__(self, spec: Spec, address: str, index: int) -> None:
        import nats

        self.loop = asyncio.new_event_loop()
        self.nc: Any = self.loop.run_until_complete(nats.connect(address))
        js = self.nc.jetstream()
        self.sub = self.loop.run_until_complete(
            js.pull_subscribe_bind(durable=f"r{index}", stream=STREAM)
        )
        self.batch = spec.batch

    def take(self, timeout: float) -> list[bytes]:
        async def fetch() -> list[bytes]:
            try:
                msgs = await self.sub.fetch(self.batch, timeout=timeout)
            except TimeoutError:
                return []
            if msgs:
                await msgs[-1].ack()
            return [m.data for m in msgs]

        got: list[bytes] = self.loop.run_until_complete(fetch())
        return got

    def finish(self) -> None:
        self.loop.run_until_complete(self.nc.flush())

    def close(self) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()


class Idle:
    """A connection (its own loop, run only to connect and close); then nothing: the
    server's pings wait in the socket until the close."""

    def __init__(self, spec: Spec, address: str, index: int) -> None:
        import nats

        self.loop = asyncio.new_event_loop()
        self.nc: Any = self.loop.run_until_complete(nats.connect(address))

    def close(self) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()
