"""`python -m bench.topics`: what topics cost the router's message throughput.

Each run sends ``--n`` messages (64 B, ``send()``) Client -> zs router -> Client, each in its
own process, and takes the rate at the sink (as bench.throughput does), while the router also
serves:

    none        nothing else (the baseline);
    publisher   one Client publishing 10,000 updates a second to 10 topics (a frame each);
    async pub   the same from an AsyncClient, which sends what a loop iteration published
                in one frame (paced by 1 ms sleeps: about 10 updates a frame);
    observers   50 observers subscribed (one process, each following the state and every
                topic with its own SUB socket, snapshot and fold);
    both        the Client publisher and the 50 observers.

The configurations take turns run by run (order reversed every other run), in one invocation,
so the shared machine's slow spells fall on all alike. The table gives each median and its
ratio to the baseline's; the extras report what they did (updates published, topic values
the observers folded, their resyncs). Beside each rate: the router's CPU a message sent
(all its threads, kernel included, over the whole run: what it spends on topics is in it),
and the CPU the extra processes took meanwhile, in % of one core.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from bench._procs import CTX, cpu_ns, median, write_json, zs_path
from bench.throughput import _zs_sink

MODES = ("none", "publisher", "async pub", "observers", "both")


def _publisher(url: str, rate: float, topics: int, stop: Any, q: Any) -> None:
    from zmqswarm.client.sync import Client

    names = [f"bench/{k}" for k in range(topics)]
    with Client("bench-publisher", router=url) as client:
        client.wait_ready(10)
        q.put("ready")
        start = time.monotonic()
        i = 0
        while not stop.is_set():
            due = int((time.monotonic() - start) * rate)
            while i < due:
                client.publish(names[i % topics], b"%d" % i)
                i += 1
            time.sleep(0.001)  # pacing: about 10 updates per wake-up
        q.put(("publisher", {"updates": i, "per_s": round(i / (time.monotonic() - start))}))


def _async_publisher(url: str, rate: float, topics: int, stop: Any, q: Any) -> None:
    import asyncio

    from zmqswarm.client.aio import AsyncClient

    async def publish() -> None:
        names = [f"bench/{k}" for k in range(topics)]
        async with AsyncClient("bench-publisher", router=url) as client:
            await client.wait_ready(10)
            q.put("ready")
            start = time.monotonic()
            i = 0
            while not stop.is_set():
                due = int((time.monotonic() - start) * rate)
                while i < due:
                    client.publish(names[i % topics], b"%d" % i)
                    i += 1
                await asyncio.sleep(0.001)
            q.put(("publisher", {"updates": i, "per_s": round(i / (time.monotonic() - start))}))

    asyncio.run(publish())


def _observers(url: str, count: int, stop: Any, q: Any) -> None:
    import zmq

    from zmqswarm.observe.observer import Observer

    watchers = [Observer(url, topics="") for _ in range(count)]
    subs = [w._open_sub() for w in watchers]  # the drivers' own steps, one poller for all
    for watcher, sub in zip(watchers, subs, strict=True):
        watcher._sync(sub, 10)
    poller = zmq.Poller()
    for sub in subs:
        poller.register(sub, zmq.POLLIN)
    q.put("ready")
    by_sub = dict(zip(subs, watchers, strict=True))
    while not stop.is_set():
        for sub, _ in poller.poll(100):
            watcher = by_sub[sub]
            if not watcher._take(sub):
                watcher._sync(sub, 10)
    values = sum(w.topics.values.__len__() for w in watchers)
    resyncs = sum(w.topics.resyncs + w.state.resyncs for w in watchers)
    ticks = min(w.topics.tick for w in watchers)
    q.put(("observers", {"topics_held": values, "resyncs": resyncs, "min_tick": ticks}))
    for sub in subs:
        sub.close(0)


def run_once(mode: str, n: int, size: int, rate: float) -> tuple[float, dict[str, Any]]:
    """Messages a second at the sink, and what else was measured."""
    from zmqswarm.client.sync import Client

    payload = b"x" * size
    with zs_path(n, _zs_sink) as (url, q, pids):
        stop, extras_q = CTX.Event(), CTX.Queue()
        extras = []
        if mode in ("publisher", "both"):
            extras.append(CTX.Process(target=_publisher, args=(url, rate, 10, stop, extras_q)))
        if mode == "async pub":
            args = (url, rate, 10, stop, extras_q)
            extras.append(CTX.Process(target=_async_publisher, args=args))
        if mode in ("observers", "both"):
            extras.append(CTX.Process(target=_observers, args=(url, 50, stop, extras_q)))
        for proc in extras:
            proc.start()
        for _ in extras:
            assert extras_q.get(timeout=60) == "ready"
        router_pid = pids[1]
        others = [proc.pid or 0 for proc in extras]
        router_before, others_before = cpu_ns(router_pid), sum(map(cpu_ns, others))
        started = time.monotonic()
        client = Client("source", router=url)
        for _ in range(n):
            client.send("sink", payload)
        assert client.close(timeout=300) == [], "messages never receipted"
        result: float = q.get(timeout=300)[0]  # (rate, CPU ns, I/O thread ns)
        took = time.monotonic() - started
        said: dict[str, Any] = {
            "router_us_per_msg": (cpu_ns(router_pid) - router_before) / n / 1000,
            "extras_cpu_pct": (sum(map(cpu_ns, others)) - others_before) / took / 1e7,
        }
        stop.set()
        for _ in extras:
            key, value = extras_q.get(timeout=60)
            said[key] = value
        for proc in extras:
            proc.join(30)
    return result, said


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000, help="messages per run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rate", type=float, default=10_000, help="topic updates a second")
    ap.add_argument("--json", default="bench/results/topics.json")
    args = ap.parse_args()
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    notes: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for run in range(args.runs):
        for mode in reversed(MODES) if run % 2 else MODES:
            rate, said = run_once(mode, args.n, 64, args.rate)
            rates[mode].append(rate)
            notes[mode].append(said)
    base = median(rates["none"])
    router_us = {m: median([s["router_us_per_msg"] for s in notes[m]]) for m in MODES}
    extras_cpu = {m: median([s["extras_cpu_pct"] for s in notes[m]]) for m in MODES}
    print(
        f"{'the router also serves':<24} {'msgs/s (median)':>16} {'of none':>8}"
        f" {'router us/msg':>14} {'of none':>8} {'extras CPU':>11}  runs"
    )
    rows = []
    for mode in MODES:
        m = median(rates[mode])
        runs = " / ".join(f"{r / 1000:.0f}k" for r in sorted(rates[mode]))
        us, base_us = router_us[mode], router_us["none"]
        print(
            f"{mode:<24} {m:>16,.0f} {m / base:>8.1%} {us:>14.2f} {base_us / us:>8.1%}"
            f" {extras_cpu[mode]:>10.0f}%  {runs}"
        )
        rows.append(
            {"mode": mode, "median": m, "ratio": m / base, "runs": rates[mode],
             "router_us_per_msg": us, "router_capacity_ratio": base_us / us,
             "extras_cpu_pct": extras_cpu[mode]}
        )  # fmt: skip
    for mode in MODES:
        for said in notes[mode]:
            extra = {k: v for k, v in said.items() if k in ("publisher", "observers")}
            if extra:
                print(f"  {mode}: {extra}")
    write_json(args.json, {"n": args.n, "rate": args.rate, "rows": rows, "extras": notes})


if __name__ == "__main__":
    main()
