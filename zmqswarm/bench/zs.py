"""zmqswarm as a benchmarked system (see ``workload``): a ``zs router`` of its own on loopback
TCP (journaled in the run's temp dir with variant "journal"), or the one at ``Spec.address``;
sync ``Client`` peers. A publish is acknowledged by its receipt (with a journal: after the
group commit's fsync), a delivery by the recipient's ack (``auto_ack``). A sender calls
``send()`` a message, or with variant "batch" sends each chunk inside ``Client.batch()``
(``send_many()`` for each run to one recipient): the analogue of a peer's pipeline, a frame
for up to 1,024 messages to any recipients.

Every peer is named ``bench-TAG-ROLEN`` (``name``): a CURVE router at ``Spec.address`` must
let ``Spec.curve``'s key use the names ``bench-*`` (its ``[router.names]``). The private
router has no CURVE, and its peers none either."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from zmqswarm.bench.machine import free_port, wait_port
from zmqswarm.bench.spec import CTX, PROFILE, Broker, Spec
from zmqswarm.protocol.options import ClientOptions

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

NAME = "zmqswarm"
VARIANTS = ("", "journal", "batch", "journal+batch")


def _router(url: str, data_dir: str | None) -> None:
    from zmqswarm.router.loop import Router

    router = Router([url], data_dir=Path(data_dir) if data_dir else None)
    router.install_signal_handlers()
    if where := os.environ.get(PROFILE):
        import cProfile

        cProfile.runctx("router.run()", globals(), {"router": router}, f"{where}/router.prof")
    else:
        router.run()


@contextmanager
def broker(spec: Spec, workdir: str) -> Iterator[Broker]:
    from zmqswarm import __version__

    version = f"zmqswarm {__version__}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}"
    if spec.address:
        yield Broker(spec.address, [], version)
        return
    if spec.variant not in VARIANTS:
        raise ValueError(f"zmqswarm variants: {VARIANTS}, not {spec.variant!r}")
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    data_dir = os.path.join(workdir, "journal") if "journal" in spec.variant else None
    proc = CTX.Process(target=_router, args=(url, data_dir), daemon=True)
    proc.start()
    try:
        wait_port(port, alive=proc.is_alive)
        yield Broker(url, [proc.pid or 0], version)
    finally:
        proc.terminate()
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)


def prepare(spec: Spec, address: str) -> None:
    """Nothing to set up: a mailbox exists for any name."""


def name(spec: Spec, role: str, index: int) -> str:
    """``bench-TAG-s0``, ``bench-TAG-r0``, ``bench-TAG-idle0``, ``bench-TAG-probe0`` (`zs
    bench`'s check that the router answers); TAG: six hex digits, new each run."""
    return f"bench-{spec.tag}-{role}{index}"


def curve(spec: Spec) -> ClientKeys | None:
    """The keys a peer reaches the router with: ``Spec.curve`` at ``Spec.address``; none at
    the private router, whatever $ZS_CURVE_SECRET and $ZS_ROUTER_KEY (which a ``Client``
    given no keys would use) say in this worker."""
    if spec.address:
        return spec.curve
    from zmqswarm.keys import ENV_CURVE_SECRET, ENV_ROUTER_KEY

    for var in (ENV_CURVE_SECRET, ENV_ROUTER_KEY):
        os.environ.pop(var, None)
    return None


class Sender:
    chunk = 256

    def __init__(self, spec: Spec, address: str, index: int) -> None:
        from zmqswarm.client.sync import Client

        options = ClientOptions(max_outbox=spec.window, send_only=True)
        self.client = Client(
            name(spec, "s", index), router=address, options=options, curve=curve(spec)
        )
        self.client.wait_ready(timeout=30)
        self.names = [name(spec, "r", r) for r in range(spec.recipients)]
        self.window = spec.window
        if "batch" in spec.variant:
            self.publish = self._publish_batch  # type: ignore[method-assign]

    def _publish_batch(self, items: list[tuple[int, bytes]]) -> None:
        with self.client.batch():
            self._publish_runs(items)

    def _publish_runs(self, items: list[tuple[int, bytes]]) -> None:
        send_many = self.client.send_many
        run: list[bytes] = []
        to = None
        for r, payload in items:
            if r != to and run:
                self._to(send_many, to, run)
                run = []
            to = r
            run.append(payload)
        if run:
            self._to(send_many, to, run)

    def _to(self, send_many: Any, r: int | None, run: list[bytes]) -> None:
        """``run`` to recipient ``r`` (every one if negative), in pieces the outbox can hold:
        a late open-loop sender may have more due at once than ``max_outbox``, and
        send_many() refuses a batch larger than the whole outbox."""
        step = self.window
        for each in self.names if r is None or r < 0 else [self.names[r]]:
            for first in range(0, len(run), step):
                send_many(each, run[first : first + step])

    def publish(self, items: list[tuple[int, bytes]]) -> None:
        send, names = self.client.send, self.names
        for r, payload in items:
            if r < 0:  # to every recipient: a mailbox each, so a send each
                for each in names:
                    send(each, payload)
            else:
                send(names[r], payload)

    def finish(self) -> int:
        return len(self.client.close(timeout=300))

    def close(self) -> None:
        self.client.close(timeout=0)


class Recipient:
    def __init__(self, spec: Spec, address: str, index: int) -> None:
        from zmqswarm.client.sync import Client

        options = ClientOptions(recv_window=spec.batch)  # the credit it gives the router
        self.batch = spec.batch
        self.client = Client(
            name(spec, "r", index), router=address, options=options, curve=curve(spec)
        )
        self.client.wait_ready(timeout=30)

    def take(self, timeout: float) -> list[bytes]:
        from zmqswarm.errors import ZsTimeoutError

        try:
            return [m.payload for m in self.client.recv_many(self.batch, timeout=timeout)]
        except ZsTimeoutError:
            return []

    def finish(self) -> None:
        self.client.close(timeout=10)

    def close(self) -> None:
        self.client.close(timeout=0)


class Idle:
    """A connected peer that never sends and is never sent to. Many per process: the shared
    context may hold more sockets than libzmq's default 1,024 (two a Client)."""

    _ctx: Any = None

    def __init__(self, spec: Spec, address: str, index: int) -> None:
        from zmqswarm.client.sync import Client

        if Idle._ctx is None:
            Idle._ctx = zmq.Context()
            Idle._ctx.MAX_SOCKETS = 4096
        self.client = Client(
            name(spec, "idle", index), router=address, context=Idle._ctx, curve=curve(spec)
        )
        self.client.wait_ready(timeout=60)

    def close(self) -> None:
        self.client.close(timeout=1)
