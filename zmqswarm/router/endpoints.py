"""Where a router listens and runs: binding its endpoints (one clear line when it cannot),
the PUB endpoints beside them, and pinning it to CPUs."""

from __future__ import annotations

import errno
import os

import zmq

from zmqswarm.errors import ConfigError

__all__ = ["bind_endpoint", "pin_to_cpus", "pub_urls", "raise_fd_limit"]


def raise_fd_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit, and return it: every
    connected peer holds a descriptor of the router's, and a soft limit of 1024 (the usual
    default) would refuse the thousandth peer. Nothing changes where there is no such limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # a hard limit the kernel caps lower (macOS: OPEN_MAX)
            return soft
    return hard


def pin_to_cpus(cpus: list[int]) -> None:
    """Keep this thread, and every thread it starts from now on, on ``cpus``. Called before
    the router's socket exists, it pins libzmq's I/O thread with the loop: on a small box
    their hand-offs then stay on one core (measured: docs/benchmarks.md). Linux only."""
    wanted = set(cpus)
    try:
        allowed = os.sched_getaffinity(0)
    except AttributeError:
        raise ValueError("pinning to CPUs needs Linux (sched_setaffinity)") from None
    if not wanted or not wanted <= allowed:
        have = ",".join(map(str, sorted(allowed)))
        raise ValueError(f"cannot pin to CPUs {sorted(wanted)}: this process may use {have}")
    os.sched_setaffinity(0, wanted)


def bind_endpoint(sock: zmq.Socket[bytes], url: str) -> None:
    """Bind, or say in one line why not: a ConfigError (the endpoint is the operator's
    choice), except EADDRINUSE, which the caller turns into who holds it."""
    try:
        sock.bind(url)
    except zmq.ZMQError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise
        reason = zmq.strerror(exc.errno) if exc.errno is not None else str(exc)
        raise ConfigError(f"cannot bind {url}: {reason}") from None


def pub_urls(binds: list[str]) -> list[str]:
    """One PUB endpoint beside each bind: ``ipc://PATH.pub``, a free port on a tcp bind's host,
    ``NAME.pub`` for inproc."""
    urls = []
    for url in binds:
        if url.startswith("tcp://"):
            host = url[len("tcp://") :].rsplit(":", 1)[0]
            urls.append(f"tcp://{host}:*")
        else:
            urls.append(f"{url}.pub")
    return urls
