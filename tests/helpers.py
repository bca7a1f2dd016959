"""Helpers shared by test modules: real processes on ipc endpoints under a per-test temp dir
(reaped at teardown), deadline waits, and the checks fault tests make on what arrived."""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zmq

from zmqswarm.errors import RouterUnavailableError
from zmqswarm.observe import list_peers
from zmqswarm.protocol import PROTOCOL_VERSION, Frame, Hello, Welcome, decode, encode

PEER = str(Path(__file__).parent / "integration" / "peer.py")


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; fail the test with ``what`` after ``timeout`` s."""
    if not poll_until(condition, timeout):
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def poll_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until true (True) or for ``timeout`` s (False): for a test that
    reports what it found when time ran out, rather than only that it did."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(delay)  # polling interval of a deadline wait, not a synchronisation
        delay = min(delay * 2, 0.1)
    return True


def answers(url: str) -> bool:
    """Whether a router answers at ``url`` now: a restarted router's ipc socket file may be
    its dead predecessor's, so its existence says nothing."""
    try:
        list_peers(url, timeout=0.5)
    except RouterUnavailableError:
        return False
    return True


def backlog(url: str, to: str, total: int) -> list[bytes]:
    """``total`` numbered messages for ``to``, in the router's mailbox when this returns."""
    from zmqswarm import Client

    payloads = [b"%d" % i for i in range(total)]
    with Client("alice", router=url) as alice:
        alice.send_many(to, payloads)[-1].wait("accepted", timeout=30)
    return payloads


class FakeRouter:
    """A router played by a raw ROUTER socket in the test, to see what a client puts on the
    wire, frame by frame. ``welcome`` answers one client's Hello; then nothing answers."""

    def __init__(self, tmp: Path) -> None:
        self.url = f"ipc://{tmp}/fake-router"
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.url)

    def frames(self, timeout_ms: int) -> list[Frame]:
        """The headers of what arrives within ``timeout_ms``, then of whatever follows at once."""
        got: list[Frame] = []
        while self.sock.poll(timeout_ms):
            got.append(decode(self.sock.recv_multipart()[1]))
            timeout_ms = 0
        return got

    def welcome(self, name: str, epoch: int) -> None:
        (hello,) = self.frames(5000)
        assert isinstance(hello, Hello)
        w = Welcome(PROTOCOL_VERSION, 1, 1, 0, 200, 1 << 20, hello.attempt, 0, False, 800)
        self.sock.send_multipart([f"{name}/{epoch:x}".encode(), encode(w)])

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()


class Procs:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.url = f"ipc://{tmp}/router"
        self.children: list[subprocess.Popen[str]] = []

    def spawn(
        self,
        *args: str,
        stdout: int | None = subprocess.PIPE,
        env: dict[str, str] | None = None,
        netns: str | None = None,
        stdin: int | None = None,
    ) -> subprocess.Popen[str]:
        """Python with ``args``; inside network namespace ``netns`` if given (`ip netns exec`
        execs the command: the pid is Python's own)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        prefix = ["ip", "netns", "exec", netns] if netns else []
        proc = subprocess.Popen(
            [*prefix, sys.executable, *args],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.children.append(proc)
        return proc

    def router(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        sock = Path(self.url[len("ipc://") :])
        sock.unlink(missing_ok=True)  # a killed router's: wait for the new one's
        proc = self.spawn("-m", "zmqswarm.cli", "router", "--bind", self.url, *extra, env=env)
        wait_for(sock.exists, 10, "the router's socket")
        return proc

    def peer(self, *args: str) -> subprocess.Popen[str]:
        return self.spawn(PEER, *args)

    def reap(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a stopped child must die, not linger
                proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()


def router_stats(router: subprocess.Popen[str]) -> dict[str, int]:
    """Stop the router (SIGTERM) and read the counters it logs on its way out."""
    return stop_router(router)[0]


def stop_router(router: subprocess.Popen[str]) -> tuple[dict[str, int], str]:
    """Stop the router (SIGTERM): the counters it logs on its way out, and its whole log."""
    router.send_signal(signal.SIGTERM)
    _, err = router.communicate(timeout=20)
    line = next(x for x in err.splitlines() if "zs router stopped: " in x)
    stats: dict[str, int] = ast.literal_eval(line.split("zs router stopped: ", 1)[1])
    return stats, err


def read_lines(path: Path) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    text = path.read_text()
    # A reader racing the writer can see the tail of a line still being written: only
    # newline-terminated lines count (each line is written by one flushed write()).
    complete = text[: text.rfind("\n") + 1]
    out = []
    for line in complete.splitlines():
        sender, payload, attempt = line.split(" ")[:3]  # a 4th field: when it was handed
        out.append((sender, payload, int(attempt)))
    return out


def check_exactly_once_in_order(
    lines: list[tuple[str, str, int]], expected: dict[str, int]
) -> None:
    per_sender: dict[str, list[int]] = defaultdict(list)
    for sender, payload, _ in lines:
        per_sender[sender].append(int(payload.split(":")[1]))
    assert set(per_sender) == set(expected)
    for sender, seqs in per_sender.items():
        assert seqs == sorted(seqs), f"{sender}: order broken"
        assert len(seqs) == len(set(seqs)), f"{sender}: duplicates"
        assert len(seqs) == expected[sender], f"{sender}: {len(seqs)} of {expected[sender]}"


@dataclass(frozen=True)
class Handed:
    sender: str
    seq: int
    attempt: int
    at: float  # time.monotonic() when recv() returned it


def handed(path: Path) -> list[Handed]:
    """What a ``take`` peer (peer.py) handed over, in order (complete lines only)."""
    if not path.exists():
        return []
    text = path.read_text()
    out = []
    for line in text[: text.rfind("\n") + 1].splitlines():
        sender, payload, attempt, at = line.split(" ")
        out.append(Handed(sender, int(payload.split(":")[1]), int(attempt), int(at) / 1e9))
    return out


def last_line(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    """The last line a peer process prints, once it has exited."""
    out, err = proc.communicate(timeout=timeout)
    lines = out.split("\n")
    return lines[-2] if len(lines) > 1 else f"no output; stderr: {err[-2000:]}"


def power_loss(data: Path) -> None:
    """After a router's kill, what a power cut would have left of its journal in ``data``:
    the WAL as long as it was at its last fsync (the router ran with ZS_RECORD_FSYNC=1)."""
    record = data / "journal.sqlite3.fsynced"
    if not record.exists():
        return  # killed before its first commit
    fsynced = int(record.read_text())
    wal = data / "journal.sqlite3-wal"
    assert wal.stat().st_size >= fsynced
    os.truncate(wal, fsynced)
