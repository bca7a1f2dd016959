"""Many idle peers in one process, for the scale tests: `python crowd.py URL PREFIX COUNT`.

The process makes its zmq context and prints ``ready``, then waits for a line ``go`` on its
standard input; it then makes COUNT Clients (named PREFIX0, PREFIX1...) at once, turns them
until the router has welcomed every one, and prints ``welcomed COUNT SECONDS`` (from ``go``).
It then idles, turning each client once a second, until its standard input closes; then it
closes every client (each says Bye) and prints ``closed``.

Each Client holds three zmq sockets (its DEALER and a monitor pair) and a few descriptors, so
the process raises libzmq's socket limit (MAX_SOCKETS, 1023 by default) and its soft
RLIMIT_NOFILE to what COUNT needs. ``Crowd`` starts and reads such processes for a test.
"""

from __future__ import annotations

import os
import resource
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..helpers import Procs

SCRIPT = str(Path(__file__))


def raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main(url: str, prefix: str, count: int) -> None:
    import zmq

    from zmqswarm import Client

    raise_fd_limit(8 * count + 256)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, 4 * count + 64)  # before the first socket: it is fixed then
    say("ready")
    if sys.stdin.readline().strip() != "go":
        return
    start = time.monotonic()
    clients = [Client(f"{prefix}{i}", router=url, context=ctx) for i in range(count)]
    waiting = clients
    while waiting:
        for client in waiting:
            client.poll()
        waiting = [c for c in waiting if not c.connected]
        if waiting:
            waiting[0].poll(0.005)  # wait in zmq's poll for the next Welcome, briefly
    say(f"welcomed {count} {time.monotonic() - start:.3f}")
    while not select.select([sys.stdin], [], [], 1.0)[0]:
        for client in clients:
            client.poll()
    sys.stdin.read()
    for client in clients:
        client.close(timeout=1.0)
    ctx.term()
    say("closed")


class Crowd:
    """Crowd processes for a test: ``processes`` of them, ``total`` peers in all, named
    PREFIX<p>-<i>. Made ready (imports done), then let ``go`` at once."""

    def __init__(
        self, procs: Procs, url: str, total: int = 1000, processes: int = 4, prefix: str = "crowd"
    ) -> None:
        self.total = total
        self.prefix = prefix
        self.children: list[subprocess.Popen[str]] = []
        self._buffers: dict[int, bytes] = {}
        for p in range(processes):
            count = total // processes + (p < total % processes)
            args = (SCRIPT, url, f"{prefix}{p}-", str(count))
            self.children.append(procs.spawn(*args, stdin=subprocess.PIPE))
        for child in self.children:
            assert self._line(child, 30) == "ready"

    def go(self) -> float:
        """Let every process make its peers; returns when (time.monotonic())."""
        start = time.monotonic()
        for child in self.children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        return start

    def welcomed(self, timeout: float) -> list[float]:
        """Seconds from ``go`` to the last Welcome, per process (each reports its own)."""
        took = []
        for child in self.children:
            word, count, seconds = self._line(child, timeout).split()
            assert word == "welcomed", word
            took.append(float(seconds))
        return took

    def close(self, timeout: float = 30) -> None:
        """Every peer says Bye; the processes exit."""
        for child in self.children:
            assert child.stdin is not None
            child.stdin.close()
        for child in self.children:
            assert self._line(child, timeout) == "closed"
            child.wait(timeout)

    def _line(self, child: subprocess.Popen[str], timeout: float) -> str:
        """The child's next line, read raw (a text stream's buffer would hide lines from
        select)."""
        assert child.stdout is not None
        fd = child.stdout.fileno()
        buffered = self._buffers.get(fd, b"")
        deadline = time.monotonic() + timeout
        while b"\n" not in buffered:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"crowd process {child.pid}: no line within {timeout} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                err = child.stderr.read() if child.stderr else ""
                raise AssertionError(f"crowd process {child.pid} ended: {err[-2000:]}")
            buffered += chunk
        line, _, self._buffers[fd] = buffered.partition(b"\n")
        return line.decode().strip()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
