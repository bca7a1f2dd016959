"""``zs monitor``: a rich view of what a router knows, folded from its Snapshot and Updates.

``render(state)`` is pure: the same WatchedState gives the same picture, so it is tested
without a terminal or a router. ``run_monitor`` is the loop around it. The only module of
the library that imports rich.
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from zmqswarm.observe.busiest import busiest, census
from zmqswarm.observe.observer import Observer
from zmqswarm.observe.topic_table import doing, topic_table
from zmqswarm.protocol import PeerItem, TopicView, WatchedState

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

__all__ = ["as_json", "render", "run_monitor"]

_RATES = ("accepted", "delivered", "acked")
_TOTALS = ("accepted", "delivered", "acked", "redelivered", "held", "dead", "resumed", "bad_frames")
_ONE_LINE: dict[str, Any] = {"no_wrap": True, "overflow": "ellipsis"}
_NAME_MAX = 20  # columns a name may take (longer ones are cut: `zs peers` shows them whole)
PEER_ROWS = 15  # names shown when the terminal's height does not say
REFRESH = 0.25  # seconds between frames at least: at most 4 a second
_TOPIC_ROWS = 5  # topics shown (`zs sub` shows them all)
_HEAD_LINES = 10  # what a frame shows besides the names' rows (totals may take two lines)


def render(
    state: WatchedState,
    *,
    url: str = "",
    silent: bool = False,
    rows: int = PEER_ROWS,
    topics: TopicView | None = None,
    prefix: str = "",
    sort: str = "name",
) -> RenderableType:
    """The monitor's picture of ``state``: a status line, the census, throughput, latency,
    totals, the ``topics`` under ``prefix``, and the ``rows`` busiest names (busiest.py, with
    what each last published under its own name) and a count of the rest. Every line fits the
    console's width (80 columns and up): long names, states and values are cut."""
    if state.router_epoch == 0:
        return Text(f"zs monitor · {url} · waiting for the router", style="yellow")
    status = Text(f"zs monitor · router {state.router_epoch:x}", style="bold", **_ONE_LINE)
    status.append(f" · up {state.at_ms / 1000:,.0f} s · update {max(state.seq, 0)}")
    if state.resyncs:
        status.append(f" · resynced {state.resyncs}x")
    if silent:
        status.append(" · router silent", style="bold red")
    elif not state.synced:
        status.append(" · resyncing", style="yellow")
    status.append(f" · {url}", style="dim")
    seen = census(state.peers.values())
    counted = Text(
        f"peers {seen.peers:,} · online {seen.online:,} · offline {seen.peers - seen.online:,}"
        f" · mail {seen.queued:,} queued, {seen.inflight:,} in flight",
        **_ONE_LINE,
    )
    rates = "  ".join(f"{key} {state.rates.get(key, 0.0):,.0f}/s" for key in _RATES)
    totals = [f"{key} {state.stats.get(key, 0):,}" for key in _TOTALS]
    figures = state.latency
    latency = Text("accept → ack: none acked since the last update", style="dim", **_ONE_LINE)
    if figures:
        shown = "  ".join(f"{k} {_ms(figures[k])}" for k in ("p50", "p90", "p99", "max"))
        latency = Text(f"accept → ack {shown} ({figures['n']:,} acked)", **_ONE_LINE)
    top = busiest(state.peers.values(), rows)
    table = _names(top, topics) if state.peers else Text("(no peers, no mail)", style="dim")
    parts: list[RenderableType] = [status, counted, Text(rates, **_ONE_LINE), latency]
    for half in (totals[:4], totals[4:]):
        parts.append(Text("  ".join(half), style="dim", **_ONE_LINE))
    if topics is not None:
        parts.append(topic_table(topics, prefix=prefix, sort=sort, limit=_TOPIC_ROWS))
    parts.append(table)
    rest = seen.peers - len(top)
    if rest > 0:
        mail = sum(bool(r.queued or r.inflight) for r in top)
        parts.append(
            Text(
                f"… and {rest:,} more ({seen.online - sum(r.online for r in top):,} online,"
                f" {seen.with_mail - mail:,} with mail): the {len(top)} busiest shown",
                style="dim",
                **_ONE_LINE,
            )
        )
    return Group(*parts)


def _topic_lines(view: TopicView | None) -> int:
    """Lines the topics panel takes: a title, a header, a rule, its rows."""
    if view is None:
        return 0
    shown = len(view.values)
    return 3 + max(1, min(shown, _TOPIC_ROWS)) + (shown > _TOPIC_ROWS)


def _names(rows: list[PeerItem], topics: TopicView | None = None) -> Text:
    """One line a row, in columns, written out: rich's Table measures every cell of every
    row each frame (about 0.6 ms a row here); this costs a few µs a row. Lines past the
    console's width are cut (the state first, as the last column)."""
    width = min(_NAME_MAX, max(len(row.name) for row in rows))
    head = f"{'name':<{width}}  {'online':<7}  {'queued':>7}  {'in flight':>9}  {'oldest':>6}"
    head += f"  {'idle':>6}  state" + ("  doing" if topics is not None else "")
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(head + "\n", style="bold")
    for row in rows:
        name = row.name if len(row.name) <= width else row.name[: width - 1] + "…"
        text.append(f"{name:<{width}}  ")
        text.append("online " if row.online else "offline", "green" if row.online else "dim")
        text.append(f"  {row.queued:>7,}", "bold yellow" if row.queued else "")
        oldest = f"{row.waiting_ms / 1000:.1f}s" if row.queued + row.inflight else ""
        idle = f"{row.idle_ms / 1000:.1f}s" if row.online else ""
        text.append(f"  {row.inflight:>9,}  {oldest:>6}  {idle:>6}  ")
        text.append(row.state, "red" if row.state.startswith("dead") else "")
        if topics is not None:
            text.append(f"  {doing(topics, row.name)}")
        text.append("\n")
    text.rstrip()
    return text


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
    curve: ClientKeys | None = None,
) -> None:
    """Show the router's state: once, or live until interrupted (Ctrl-C); ``json``: one
    line of JSON per change instead of the view. ``topics``: the prefix of the topics shown
    (None: none), sorted by ``sort``. Every topic is followed: a peer's row shows the one it
    publishes under its own name, whatever the prefix."""
    observer = Observer(router, timeout=timeout, topics=None if topics is None else "", curve=curve)
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
    updates = observer.watch(tick=REFRESH)
    state = next(updates)  # the first Snapshot: its errors reach the caller
    # Frames are drawn here, at most every REFRESH, never by a thread of rich's own: a change
    # that comes sooner waits for the next frame (the watch yields at least every REFRESH).
    live = None if json else Live(console=console, auto_refresh=False)
    shown: tuple[int, bool, int] | None = None
    drawn = -REFRESH
    try:
        if live is not None:
            live.start()
        while True:
            silent = observer.silent
            if live is not None:
                now = time.monotonic()
                if now - drawn >= REFRESH:
                    drawn = now
                    rows = max(3, console.size.height - _HEAD_LINES - _topic_lines(view))
                    live.update(draw(state, silent=silent, rows=rows), refresh=True)
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
