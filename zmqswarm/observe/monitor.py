"""``zs monitor``: a rich view of what a router knows, folded from its Snapshot and Updates.

``render(state)`` is pure: the same WatchedState gives the same picture, so it is tested
without a terminal or a router. ``run_monitor`` is the loop around it. The only module of
the library that imports rich.
"""

from __future__ import annotations

import functools

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from zmqswarm.observe.observer import Observer
from zmqswarm.observe.topic_table import doing, topic_table
from zmqswarm.protocol import TopicView, WatchedState

__all__ = ["as_json", "render", "run_monitor"]

_RATES = ("accepted", "delivered", "acked")
_TOTALS = ("accepted", "delivered", "acked", "redelivered", "held", "dead", "resumed", "bad_frames")


def render(
    state: WatchedState,
    *,
    url: str = "",
    silent: bool = False,
    topics: TopicView | None = None,
    prefix: str = "",
    sort: str = "name",
) -> RenderableType:
    """The monitor's picture of ``state``: a status line, throughput, one row per name (with
    what it last published under its own name), and the ``topics`` under ``prefix``."""
    if state.router_epoch == 0:
        return Text(f"zs monitor · {url} · waiting for the router", style="yellow")
    status = Text(f"zs monitor · {url} · router {state.router_epoch:x}", style="bold")
    status.append(f" · up {state.at_ms / 1000:,.0f} s · update {max(state.seq, 0)}")
    if state.resyncs:
        status.append(f" · resynced {state.resyncs}x")
    if silent:
        status.append(" · router silent", style="bold red")
    elif not state.synced:
        status.append(" · resyncing", style="yellow")
    rates = "  ".join(f"{key} {state.rates.get(key, 0.0):,.0f}/s" for key in _RATES)
    totals = "  ".join(f"{key} {state.stats.get(key, 0):,}" for key in _TOTALS)
    figures = state.latency
    latency = Text("accept → ack: none acked since the last update", style="dim")
    if figures:
        shown = "  ".join(f"{k} {_ms(figures[k])}" for k in ("p50", "p90", "p99", "max"))
        latency = Text(f"accept → ack {shown} ({figures['n']:,} acked)")
    table = Table(expand=False, show_edge=False, pad_edge=False)
    table.add_column("name")
    table.add_column("online")
    table.add_column("queued", justify="right")
    table.add_column("in flight", justify="right")
    table.add_column("oldest", justify="right")
    table.add_column("idle", justify="right")
    table.add_column("state")
    if topics is not None:
        table.add_column("doing")
    for name in sorted(state.peers):
        row = state.peers[name]
        online = Text("online", style="green") if row.online else Text("offline", style="dim")
        idle = f"{row.idle_ms / 1000:.1f}s" if row.online else ""
        queued = Text(f"{row.queued:,}", style="bold yellow" if row.queued else "")
        inflight = f"{row.inflight:,}"
        oldest = f"{row.waiting_ms / 1000:.1f}s" if row.queued + row.inflight else ""
        style = "red" if row.state.startswith("dead") else ""
        state_text = Text(row.state, style=style)
        cells: list[RenderableType] = [name, online, queued, inflight, oldest, idle, state_text]
        table.add_row(*cells, *([doing(topics, name)] if topics is not None else []))
    if not state.peers:
        empty = [""] * (len(table.columns) - 1)
        table.add_row(Text("(no peers, no mail)", style="dim"), *empty)
    parts: list[RenderableType] = [status, Text(rates), latency, Text(totals, style="dim"), table]
    if topics is not None:
        parts.append(topic_table(topics, prefix=prefix, sort=sort))
    return Group(*parts)


def _ms(us: int) -> str:
    return f"{us / 1000:,.1f} ms" if us < 10_000_000 else f"{us / 1_000_000:,.0f} s"


def as_json(state: WatchedState, *, silent: bool = False, topics: TopicView | None = None) -> str:
    """``state`` as one line of JSON, for scripts (``zs monitor --json``)."""
    import msgspec

    shown: dict[str, object] = {
        "router_epoch": state.router_epoch,
        "seq": state.seq,
        "at_ms": state.at_ms,
        "silent": silent,
        "peers": [msgspec.structs.asdict(state.peers[name]) for name in sorted(state.peers)],
        "stats": state.stats,
        "rates": state.rates,
        "latency_us": state.latency,
    }
    if topics is not None:
        shown["topics"] = [
            {"topic": r.topic, "seq": r.seq, "publisher": r.publisher, "size": len(r.payload)}
            for _, r in sorted(topics.values.items())
        ]
    return msgspec.json.encode(shown).decode()


def run_monitor(
    router: str | None = None,
    *,
    once: bool = False,
    json: bool = False,
    timeout: float = 5.0,
    console: Console | None = None,
    topics: str | None = "",
    sort: str = "name",
) -> None:
    """Show the router's state: once, or live until interrupted (Ctrl-C); ``json``: one
    line of JSON per change instead of the view. ``topics``: the prefix of the topics shown
    (None: none), sorted by ``sort``. Every topic is followed: a peer's row shows the one it
    publishes under its own name, whatever the prefix."""
    observer = Observer(router, timeout=timeout, topics=None if topics is None else "")
    view = observer.core.topics
    console = console or Console()
    draw = functools.partial(render, url=observer.url, topics=view, prefix=topics or "", sort=sort)
    if once:
        state = observer.snapshot()
        if json:
            print(as_json(state, topics=view), flush=True)  # noqa: T201 (the command's output)
        else:
            console.print(draw(state))
        return
    updates = observer.watch()
    state = next(updates)  # the first Snapshot: its errors reach the caller
    live = None if json else Live(draw(state), console=console)
    shown: tuple[int, bool, int] | None = None
    try:
        if live is not None:
            live.start()
        while True:
            silent = observer.silent
            if live is not None:
                live.update(draw(state, silent=silent))
            elif (state.seq, silent, view.tick if view else 0) != shown:  # a change, not a tick
                print(as_json(state, silent=silent, topics=view), flush=True)  # noqa: T201
                shown = (state.seq, silent, view.tick if view else 0)
            state = next(updates)
    except KeyboardInterrupt:
        pass
    finally:
        updates.close()
        if live is not None:
            live.stop()
