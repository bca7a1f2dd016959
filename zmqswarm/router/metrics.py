"""``zs router --metrics HOST:PORT``: the router's counters, gauges and accept → ack latency
in Prometheus' text format (version 0.0.4), over HTTP, served from the router's own loop.

No thread: a scrape would hold the GIL the loop needs for as long as it runs (an HTTP server
and a renderer in Python), at moments the loop cannot choose. Here libzmq's I/O thread (C)
carries the TCP connections of a zmq STREAM socket, and the loop looks at it when it looks at
its connection monitor (every 50 ms): one EVENTS query a look, and the page is rendered only
when asked for, from the live counters. docs/benchmarks.md has what each way costs the loop.

The endpoint has no authentication. It binds what it is told: loopback is the norm; any other
address is served as asked, and the router logs a warning that anyone who can reach it may
read the figures (aggregates only: no peer names, no payloads).

Latency percentiles are a summary over about the last minute: each window the router closes
for its observers (every ``publish_interval``) is folded into 10-second slots, and the
quantiles come from the last six. ``_count`` and ``_sum`` run from the start; like every
figure of a LatencyWindow, each time is its bucket's upper edge (at most 1/8 over the truth).
"""

from __future__ import annotations

import functools
import ipaddress
import os
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import zmq

from zmqswarm.errors import ConfigError
from zmqswarm.protocol.state_feed import upper_edge
from zmqswarm.transport import readable

from .endpoints import bind_endpoint

if TYPE_CHECKING:
    from zmqswarm.protocol import RouterCore

__all__ = ["CONTENT_TYPE", "LatencyRing", "MetricsServer", "parse_address", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
QUANTILES = (0.5, 0.9, 0.99)
SLOT = 10.0  # seconds a slot of the latency ring covers
SLOTS = 6  # slots the quantiles are taken over: the last minute, give or take a slot
_MAX_REQUEST = 8192  # bytes of request head kept per connection
_MAX_OPEN = 32  # connections with a request half read; past it the oldest is closed
_NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE = int(zmq.SNDMORE)

# Counters the router keeps (RouterCore.stats), by key: metric name, help. A key not listed
# here (a newer counter) is still exported, as zmqswarm_<key>_total; nack_<code> keys are one
# family with a reason label.
COUNTERS: dict[str, tuple[str, str]] = {
    "accepted": ("messages_accepted", "Messages accepted into a mailbox (each receipted)."),
    "duplicates": (
        "messages_duplicate",
        "Messages sent again that the router already had: deduplicated, receipted again.",
    ),
    "delivered": ("messages_delivered", "Messages sent to recipients (Deliver items)."),
    "acked": ("messages_acked", "Messages their recipients acked."),
    "held": ("messages_held", "Messages a recipient held back (Hold) to be delivered again."),
    "redelivered": (
        "messages_redelivered",
        "Messages out and unacked when their recipient's session ended: they go again.",
    ),
    "dead": ("dead_letters", "Messages given up on (ttl passed, too many attempts)."),
    "dead_dropped": ("dead_letters_dropped", "Dead letters forgotten to make room for newer."),
    "bad_frames": ("bad_frames", "Frames refused as malformed."),
    "resumed": ("sessions_resumed", "Hellos from a peer incarnation already known: reconnects."),
    "disconnected": ("sessions_disconnected", "Sessions ended because their connection was gone."),
    "store_failures": ("store_failures", "Times the journal began failing to write."),
}
_NACK = "nack_"


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6; port 0: any free one) as (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"metrics address {address!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name or an interface: not known to be loopback


class LatencyRing:
    """Closed LatencyWindows (their bucket counts) in slots of ``SLOT`` seconds, the last
    ``SLOTS`` kept, and running totals; ``fold`` is a LatencyWindow's ``on_reset``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.slots: deque[tuple[float, list[int]]] = deque(maxlen=SLOTS)
        self.count = 0
        self.sum_us = 0

    def fold(self, counts: list[int]) -> None:
        now = self.clock()
        slots = self.slots
        if not slots or now - slots[-1][0] >= SLOT:
            slots.append((now, [0] * len(counts)))
        into = slots[-1][1]
        for index, count in enumerate(counts):
            if count:
                into[index] += count
                self.count += count
                self.sum_us += count * upper_edge(index)

    def quantiles(self) -> dict[float, float]:
        """Seconds at each of QUANTILES over the slots begun within the last SLOTS * SLOT
        seconds; {} if nothing was timed then."""
        since = self.clock() - SLOTS * SLOT
        recent = [counts for start, counts in self.slots if start >= since]
        if not recent:
            return {}
        merged = [sum(column) for column in zip(*recent, strict=True)]
        n = sum(merged)
        if not n:
            return {}
        out: dict[float, float] = {}
        wanted = list(QUANTILES)
        seen = 0
        for index, count in enumerate(merged):
            seen += count
            while wanted and count and seen >= n * wanted[0]:
                out[wanted.pop(0)] = upper_edge(index) / 1e6
        return out


def render_metrics(core: RouterCore, ring: LatencyRing | None, now: float) -> bytes:
    """The exposition page for ``core`` as it is now (``now`` on the router's clock)."""
    out: list[str] = []

    def family(name: str, kind: str, help_: str) -> None:
        out.append(f"# HELP zmqswarm_{name} {help_}\n# TYPE zmqswarm_{name} {kind}\n")

    stats = core.stats
    nacks = {key[len(_NACK) :]: value for key, value in stats.items() if key.startswith(_NACK)}
    for key, value in stats.items():
        if key.startswith(_NACK):
            continue
        name, help_ = COUNTERS.get(key, (key, f"Router counter {key}."))
        family(f"{name}_total", "counter", help_)
        out.append(f"zmqswarm_{name}_total {value}\n")
    family("nacks_total", "counter", "Frames refused with a Nack, by reason (the Nack's code).")
    for reason, value in sorted(nacks.items()):
        out.append(f'zmqswarm_nacks_total{{reason="{_label(reason)}"}} {value}\n')

    delivery, registry = core.delivery, core.registry
    queued = inflight = 0
    oldest_ms = 0
    for mb in delivery.mailboxes.values():
        queued += len(mb.queue) + mb.spilled
        inflight += len(mb.inflight)
        if mb.queue or mb.inflight:
            oldest_ms = max(oldest_ms, mb.oldest_wait_ms(now))
    gauges = (
        ("peers_online", "Peers connected under a name that receives.", len(registry.by_name)),
        ("sessions", "Sessions, send-only ones (tools, senders) included.", len(registry.sessions)),
        ("mailboxes", "Names with a mailbox.", len(delivery.mailboxes)),
        ("messages_queued", "Messages waiting to go out (in memory or on disk).", queued),
        ("messages_inflight", "Messages out to recipients, not yet acked.", inflight),
        (
            "held_bytes",
            "Bytes held for recipients: payloads, and 200 each besides.",
            delivery.nbytes,
        ),
        ("oldest_waiting_seconds", "How long the oldest message held has waited.", oldest_ms / 1e3),
        ("dead_letters_held", "Dead letters kept for listing (zs dead).", len(core.dead)),
        ("uptime_seconds", "Seconds since the router started.", now - core.publisher.started),
    )
    for name, help_, gauge in gauges:
        family(name, "gauge", help_)
        out.append(f"zmqswarm_{name} {_number(gauge)}\n")
    family("router_info", "gauge", "The router's incarnation (its epoch, in hex), always 1.")
    out.append(f'zmqswarm_router_info{{epoch="{core.epoch:x}"}} 1\n')

    if ring is not None:
        name = "ack_latency_seconds"
        family(name, "summary", "Accept to ack, quantiles over about the last minute.")
        figures = ring.quantiles()
        for q in QUANTILES:
            out.append(f'zmqswarm_{name}{{quantile="{q}"}} {_number(figures.get(q, "NaN"))}\n')
        out.append(f"zmqswarm_{name}_sum {_number(ring.sum_us / 1e6)}\n")
        out.append(f"zmqswarm_{name}_count {ring.count}\n")
    out.extend(_process())
    return "".join(out).encode()


def _process() -> list[str]:
    """The standard process_* metrics (as Prometheus' own clients name them), from /proc;
    none where it is absent."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        fds = len(os.listdir("/proc/self/fd"))
        ticks, page, boot = _system()
    except OSError:
        return []
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    start = boot + int(fields[19]) / ticks
    rss = int(fields[21]) * page
    rows = (
        ("cpu_seconds_total", "counter", "User and system CPU time spent, seconds.", cpu),
        ("resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss),
        ("virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", int(fields[20])),
        ("open_fds", "gauge", "Number of open file descriptors.", fds),
        ("start_time_seconds", "gauge", "Start time of the process since the epoch.", start),
    )
    return [
        f"# HELP process_{name} {help_}\n# TYPE process_{name} {kind}\n"
        f"process_{name} {_number(v)}\n"
        for name, kind, help_, v in rows
    ]


@functools.cache
def _system() -> tuple[int, int, int]:
    """Clock ticks a second, the page size, and when the machine booted (epoch seconds)."""
    with open("/proc/stat", "rb") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith(b"btime"))
    return os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE"), boot


def _number(value: float | int | str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    return repr(round(value, 6))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class MetricsServer:
    """HTTP on a zmq STREAM socket, answered by the router's loop (``serve``, each look).

    Args:
        address: ``HOST:PORT`` to listen on (port 0: a free one; ``url`` says which).
        core: the router's core, read when a page is asked for.
    """

    def __init__(self, address: str, core: RouterCore, context: zmq.Context[Any]) -> None:
        host, port = parse_address(address)
        self.core = core
        self.loopback = is_loopback(host)
        sock: zmq.Socket[bytes] = context.socket(zmq.STREAM)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.STREAM_NOTIFY, 0)  # data only: no empty connect/close messages
        if host.startswith("["):
            sock.setsockopt(zmq.IPV6, 1)
        try:
            bind_endpoint(sock, f"tcp://{host}:{port or '*'}")
        except zmq.ZMQError:  # EADDRINUSE
            sock.close(0)
            raise ConfigError(f"cannot serve metrics on {address}: address in use") from None
        except BaseException:
            sock.close(0)
            raise
        self.sock = sock
        bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.url = f"http://{bound[len('tcp://') :]}/metrics"
        self.ring = LatencyRing()
        core.latency.on_reset = self.ring.fold
        self.scrapes = 0
        self._heads: dict[bytes, bytearray] = {}  # connection -> its request so far

    def serve(self, now: float) -> None:
        """Answer every request that has fully arrived; never blocks."""
        sock = self.sock
        if not readable(sock):
            return
        heads = self._heads
        while True:
            try:
                connection, data = sock.recv_multipart(_NOBLOCK)
            except zmq.Again:
                return
            head = heads.pop(connection, None) or bytearray()
            head += data
            end = head.find(b"\r\n\r\n")
            if end < 0:
                if len(head) > _MAX_REQUEST:
                    self._answer(connection, 431, b"request head too large\n")
                    continue
                heads[connection] = head  # (re)inserted last: the dict keeps age order
                if len(heads) > _MAX_OPEN:
                    oldest = next(iter(heads))
                    del heads[oldest]
                    self._close(oldest)
                continue
            self._request(connection, bytes(head[:end]), now)

    def _request(self, connection: bytes, head: bytes, now: float) -> None:
        method, _, rest = head.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            self._answer(connection, 405, b"GET /metrics\n")
        elif path not in (b"/metrics", b"/"):
            self._answer(connection, 404, b"the metrics are at /metrics\n")
        else:
            self.scrapes += 1
            page = render_metrics(self.core, self.ring, now)
            self._answer(connection, 200, page, CONTENT_TYPE, body=method == b"GET")

    def _answer(
        self,
        connection: bytes,
        status: int,
        page: bytes,
        kind: str = "text/plain; charset=utf-8",
        body: bool = True,
    ) -> None:
        reason = _REASONS[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {len(page)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            self.sock.send(connection, _SNDMORE | _NOBLOCK)
            self.sock.send(head + page if body else head, _NOBLOCK)
        except zmq.ZMQError:  # gone, or its pipe full: it asks again
            return
        self._close(connection)

    def _close(self, connection: bytes) -> None:
        """An empty message closes a STREAM connection (after what was queued before it)."""
        try:
            self.sock.send(connection, _SNDMORE | _NOBLOCK)
            self.sock.send(b"", _NOBLOCK)
        except zmq.ZMQError:
            pass

    def close(self) -> None:
        if not self.sock.closed:
            self.sock.close(0)
        if self.core.latency.on_reset == self.ring.fold:
            self.core.latency.on_reset = None


_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 431: "Too Large"}
