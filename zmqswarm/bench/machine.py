"""The machine a run measures on: free loopback ports, CPU time from /proc, timer slack."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

__all__ = ["cpu_ns", "free_port", "precise_sleep", "wait_port"]


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
