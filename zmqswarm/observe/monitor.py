"""``zs monitor``: a rich view of what a router knows, folded from its Snapshot and Updates.

``render(state)`` is pure: the same WatchedState gives the same picture, so it is tested
without a terminal or a router. ``run_monitor`` is the loop around it. The only module of
the library that imports rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from zmqswarm.observe.observer import Observer
from zmqswarm.protocol import WatchedState

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

__all__ = ["as_json", "render", "run_monitor"]

_RATES = ("accepted", "delivered", "acked")
_TOTALS = ("accepted", "delivered", "acked", "redelivered", "held", "dead", "resumed", "bad_frames")


def render(state: WatchedState, *, url: str = "", silent: bool = False) -> RenderableType:
    """The monitor's picture of ``state``: a status line, throughput, one row per name."""
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
    for name in sorted(state.peers):
        row = state.peers[name]
        online = Text("online", style="green") if row.online else Text("offline", style="dim")
        idle = f"{row.idle_ms / 1000:.1f}s" if row.online else ""
        queued = Text(f"{row.queued:,}", style="bold yellow" if row.queued else "")
        inflight = f"{row.inflight:,}"
        oldest = f"{row.waiting_ms / 1000:.1f}s" if row.queued + row.inflight else ""
        style = "red" if row.state.startswith("dead") else ""
        state_text = Text(row.state, style=style)
        table.add_row(name, online, queued, inflight, oldest, idle, state_text)
    if not state.peers:
        table.add_row(Text("(no peers, no mail)", style="dim"), "", "", "", "", "", "")
    return Group(status, Text(rates), latency, Text(totals, style="dim"), table)


def _ms(us: int) -> str:
    return f"{us / 1000:,.1f} ms" if us < 10_000_000 else f"{us / 1_000_000:,.0f} s"


def as_json(state: WatchedState, *, silent: bool = False) -> str:
    """``state`` as one line of JSON, for scripts (``zs monitor --json``)."""
    import msgspec

    return msgspec.json.encode(
        {
            "router_epoch": state.router_epoch,
            "seq": state.seq,
            "at_ms": state.at_ms,
            "silent": silent,
            "peers": [msgspec.structs.asdict(state.peers[name]) for name in sorted(state.peers)],
            "stats": state.stats,
            "rates": state.rates,
            "latency_us": state.latency,
        }
    ).decode()


def run_monitor(
    router: str | None = None,
    *,
    once: bool = False,
    json: bool = False,
    timeout: float = 5.0,
    console: Console | None = None,
    curve: ClientKeys | None = None,
) -> None:
    """Show the router's state: once, or live until interrupted (Ctrl-C); ``json``: one
    line of JSON per change instead of the view."""
    observer = Observer(router, timeout=timeout, curve=curve)
    console = console or Console()
    if once:
        state = observer.snapshot()
        if json:
            print(as_json(state), flush=True)  # noqa: T201 (the command's output)
        else:
            console.print(render(state, url=observer.url))
        return
    updates = observer.watch()
    state = next(updates)  # the first Snapshot: its errors reach the caller
    live = None if json else Live(render(state, url=observer.url), console=console)
    shown: tuple[int, bool] | None = None
    try:
        if live is not None:
            live.start()
        while True:
            if live is not None:
                live.update(render(state, url=observer.url, silent=observer.silent))
            elif (state.seq, observer.silent) != shown:  # a change, not a tick
                print(as_json(state, silent=observer.silent), flush=True)  # noqa: T201
                shown = (state.seq, observer.silent)
            state = next(updates)
    except KeyboardInterrupt:
        pass
    finally:
        updates.close()
        if live is not None:
            live.stop()
