"""What a benchmark run is (``Spec``), what a measured system provides, and the header every
message carries: shared by the parent (workload.py) and the workers (worker.py).

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

import multiprocessing as mp
import os
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

__all__ = ["ALL", "CTX", "HEADER", "PROFILE", "Broker", "RecipientLike", "SenderLike", "Spec"]

HEADER = struct.Struct("<HHIq")  # sender, recipient, seq of the pair, due time (ns, 0: none)
ALL = 0xFFFF  # the recipient of a fan-out message (and -1 its index in a publish)
CTX = mp.get_context("spawn")  # a clean interpreter per worker, as deployments have
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
