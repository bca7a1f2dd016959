"""`python -m bench.metrics`: what serving Prometheus metrics costs the router's loop, two ways.

- **loop**: `zs router --metrics`: the page written out by hand (router/metrics.py) and served
  from the loop on a zmq STREAM socket, looked at every 50 ms.
- **thread**: prometheus_client's own HTTP server thread, its collector reading a snapshot the
  loop swaps in by reference at each Update (no lock: the loop never touches it again).

Each against a router serving no metrics, in the same invocation (ABBA order):

(a) the page alone, in this process: µs to render it for 2 and for 1,000 online peers;
(b) an idle router scraped ``--rate`` times a second for ``--seconds``: the router process's
    CPU a scrape, over the same router unscraped (all its threads: the thread's work holds the
    GIL the loop needs);
(c) throughput of `send_many(64)` (64 B) through the router while it is scraped ``--rate``
    times a second (Prometheus scrapes every 15 s: the rate is raised to make a cost show).
"""

from __future__ import annotations

import argparse
import statistics
import time
import timeit
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench._procs import CTX, _reap, cpu_ns, endpoint, median, wait_path, write_json
from bench.throughput import _zs_sink

VARIANTS = ("none", "loop", "thread")


def _core_with(peers: int) -> Any:
    from zmqswarm.protocol import PROTOCOL_VERSION, Hello, RouterCore, encode

    core = RouterCore(epoch=1)
    for i in range(peers):
        core.handle(b"p%d/1" % i, [encode(Hello(PROTOCOL_VERSION, f"p{i}", 1))], 0.0)
    core.take_output(0.0)
    return core


class _Snapshot:
    """What the thread variant's collector reads: built by the loop, swapped in whole."""

    def __init__(self, core: Any, ring: Any, now: float) -> None:
        from zmqswarm.router.metrics import QUANTILES

        self.stats = dict(core.stats)
        delivery = core.delivery
        self.gauges = {
            "peers_online": len(core.registry.by_name),
            "sessions": len(core.registry.sessions),
            "mailboxes": len(delivery.mailboxes),
            "messages_queued": sum(len(m.queue) + m.spilled for m in delivery.mailboxes.values()),
            "messages_inflight": sum(len(m.inflight) for m in delivery.mailboxes.values()),
            "held_bytes": delivery.nbytes,
            "dead_letters_held": len(core.dead),
        }
        figures = ring.quantiles()
        self.quantiles = {q: figures.get(q, float("nan")) for q in QUANTILES}
        self.count, self.sum = ring.count, ring.sum_us / 1e6


def _registry(holder: dict[str, _Snapshot]) -> Any:
    """A prometheus_client registry: the standard process collector and one that reads the
    latest snapshot from ``holder``."""
    from prometheus_client import CollectorRegistry, ProcessCollector
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        SummaryMetricFamily,
    )
    from prometheus_client.samples import Sample

    from zmqswarm.router.metrics import COUNTERS

    class Collector:
        def collect(self) -> Iterator[Any]:
            snap = holder.get("snap")
            if snap is None:
                return
            nacks = CounterMetricFamily("zmqswarm_nacks", "Nacks by reason.", labels=["reason"])
            for key, value in snap.stats.items():
                if key.startswith("nack_"):
                    nacks.add_metric([key[5:]], value)
                    continue
                name, help_ = COUNTERS.get(key, (key, f"Router counter {key}."))
                yield CounterMetricFamily(f"zmqswarm_{name}", help_, value=value)
            yield nacks
            for name, gauge in snap.gauges.items():
                yield GaugeMetricFamily(f"zmqswarm_{name}", name, value=gauge)
            summary = SummaryMetricFamily(
                "zmqswarm_ack_latency_seconds", "Accept to ack.", snap.count, snap.sum
            )
            for q, v in snap.quantiles.items():
                summary.samples.append(Sample(summary.name, {"quantile": str(q)}, v))
            yield summary

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    registry.register(Collector())
    return registry


def _router(url: str, variant: str, q: Any) -> None:
    import time as _time

    from zmqswarm.router.loop import Router

    router = Router([url], metrics="127.0.0.1:0" if variant == "loop" else None)
    router.install_signal_handlers()
    port = 0
    if router.metrics is not None:
        port = int(router.metrics.url.rsplit(":", 1)[1].split("/")[0])
    elif variant == "thread":
        from prometheus_client import start_http_server

        from zmqswarm.router.metrics import LatencyRing

        ring = LatencyRing()
        holder: dict[str, _Snapshot] = {}
        core = router.core

        def closed(counts: list[int]) -> None:  # the loop, at each Update: swap it in
            ring.fold(counts)
            holder["snap"] = _Snapshot(core, ring, _time.monotonic())

        core.latency.on_reset = closed
        server, _ = start_http_server(0, "127.0.0.1", registry=_registry(holder))
        port = server.server_port
    q.put(port)
    router.run()


def _scraper(port: int, rate: float, seconds: float, q: Any) -> None:
    url = f"http://127.0.0.1:{port}/metrics"
    step, took = 1 / rate, []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        t = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as answer:
            answer.read()
        took.append(time.perf_counter() - t)
        n += 1
        time.sleep(max(0.0, start + n * step - time.monotonic()))
    q.put((n, statistics.median(took)))


@contextmanager
def _path(variant: str) -> Iterator[tuple[str, Any, int]]:
    url = endpoint(f"metrics-{variant}")
    q: Any = CTX.Queue()
    router = CTX.Process(target=_router, args=(url, variant, q))
    router.start()
    wait_path(url)
    port: int = q.get(timeout=30)
    try:
        yield url, router, port
    finally:
        router.terminate()
        _reap(router)


def _scrape_in_background(port: int, rate: float, seconds: float) -> tuple[Any, Any]:
    q: Any = CTX.Queue()
    proc = CTX.Process(target=_scraper, args=(port, rate, seconds, q))
    proc.start()
    return proc, q


def idle_cost(variant: str, rate: float, seconds: float) -> dict[str, float]:
    """The router's CPU over ``seconds`` of being scraped ``rate`` times a second, idle."""
    with _path(variant) as (_, router, port):
        time.sleep(0.5)  # start-up done
        before = cpu_ns(router.pid)
        scrapes, took = 0, 0.0
        if variant != "none":
            proc, q = _scrape_in_background(port, rate, seconds)
            scrapes, took = q.get(timeout=seconds + 60)
            _reap(proc)
        else:
            time.sleep(seconds)
        cpu = cpu_ns(router.pid) - before
    return {"cpu_ms": cpu / 1e6, "scrapes": scrapes, "scrape_ms": took * 1e3}


def loaded_rate(variant: str, n: int, rate: float) -> float:
    """Messages a second of send_many(64) while the router is scraped ``rate`` times a second."""
    from zmqswarm.client.sync import Client

    n -= n % 64
    with _path(variant) as (url, _, port):
        q: Any = CTX.Queue()
        sink = CTX.Process(target=_zs_sink, args=(url, n, q))
        sink.start()
        assert q.get(timeout=30) == "ready"
        scraper = scraped = None
        if variant != "none":
            scraper, scraped = _scrape_in_background(port, rate, 3600)  # killed below
        try:
            client = Client("source", router=url)
            chunk = [b"x" * 64] * 64
            for _ in range(n // 64):
                client.send_many("sink", chunk)
            assert client.close(timeout=300) == []
            result: float = q.get(timeout=300)[0]  # (rate, CPU ns, I/O thread ns)
        finally:
            if scraper is not None:
                scraper.kill()
                _reap(scraper)
                del scraped  # kept until the scraper is gone: its child unpickles it
            _reap(sink)
    return result


def page_us(peers: int) -> dict[str, float]:
    """µs to render the page for ``peers`` online: by hand, and through prometheus_client
    (collect + generate_latest) from a snapshot."""
    from prometheus_client import generate_latest

    from zmqswarm.router.metrics import LatencyRing, render_metrics

    core = _core_with(peers)
    ring = LatencyRing()
    holder = {"snap": _Snapshot(core, ring, 0.0)}
    registry = _registry(holder)
    out = {}
    for label, fn in (
        ("loop", lambda: render_metrics(core, ring, 1.0)),
        ("thread", lambda: generate_latest(registry)),
        ("snapshot", lambda: _Snapshot(core, ring, 1.0)),
    ):
        number, _ = timeit.Timer(fn).autorange()
        out[label] = min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=float, default=20.0, help="scrapes a second")
    ap.add_argument("--seconds", type=float, default=5.0, help="of each idle run")
    ap.add_argument("--n", type=int, default=100_000, help="messages a loaded run")
    ap.add_argument("--json", default="bench/results/metrics.json")
    args = ap.parse_args()
    result: dict[str, Any] = {"rate": args.rate}
    print("(a) the page, µs to make it (min of 5):")
    print(f"{'peers':>6} {'by hand':>9} {'prometheus_client':>18} {'its snapshot':>13}")
    for peers in (2, 1000):
        us = page_us(peers)
        result[f"page_us_{peers}"] = us
        print(f"{peers:>6} {us['loop']:>9,.0f} {us['thread']:>18,.0f} {us['snapshot']:>13,.0f}")
    idle: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    loaded: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for run in range(args.runs):
        order = VARIANTS if run % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            idle[variant].append(idle_cost(variant, args.rate, args.seconds))
        for variant in order:
            loaded[variant].append(loaded_rate(variant, args.n, args.rate))
    base_cpu = median([r["cpu_ms"] for r in idle["none"]])
    base_rate = median(loaded["none"])
    print(f"\n(b) idle, scraped {args.rate:g}/s for {args.seconds:g} s; (c) send_many(64) 64 B")
    print(f"{'variant':<8} {'CPU ms':>8} {'CPU µs/scrape':>14} {'scrape ms':>10} {'msgs/s':>10} "
          f"{'of none':>8}  runs")  # fmt: skip
    rows = []
    for variant in VARIANTS:
        cpu = median([r["cpu_ms"] for r in idle[variant]])
        scrapes = median([r["scrapes"] for r in idle[variant]])
        took = median([r["scrape_ms"] for r in idle[variant]])
        per = (cpu - base_cpu) * 1e3 / scrapes if scrapes else 0.0
        rate = median(loaded[variant])
        runs = " / ".join(f"{r / 1000:.0f}k" for r in sorted(loaded[variant]))
        print(f"{variant:<8} {cpu:>8.1f} {per:>14,.0f} {took:>10.2f} {rate:>10,.0f} "
              f"{rate / base_rate:>8.1%}  {runs}")  # fmt: skip
        rows.append(
            {"variant": variant, "idle_cpu_ms": cpu, "cpu_us_per_scrape": per,
             "scrape_ms": took, "msgs_per_s": rate, "of_none": rate / base_rate,
             "runs": loaded[variant], "idle_runs": idle[variant]}
        )  # fmt: skip
    result["rows"] = rows
    write_json(args.json, result)


if __name__ == "__main__":
    main()
