"""The topics in ``zs monitor`` and ``zs peers``: pure functions of a TopicView, tested at
a fixed width without a terminal. rich is imported only by the function that draws."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from zmqswarm.protocol import TopicRecord, TopicView

__all__ = ["SORTS", "doing", "shown_value", "topic_table"]

SORTS = ("name", "recent", "publisher")
MAX_SHOWN = 60  # characters of a value shown in a table cell


def shown_value(payload: bytes, limit: int = MAX_SHOWN) -> str:
    """A value as one line of text: UTF-8 (undecodable bytes escaped), newlines as ``⏎``,
    cut to ``limit`` characters with an ellipsis."""
    text = payload.decode("utf-8", "backslashreplace")
    text = text.replace("\r\n", "⏎").replace("\n", "⏎").replace("\r", "⏎").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def doing(view: TopicView | None, name: str) -> str:
    """What peer ``name`` last published under its own name ("" if nothing)."""
    if view is None:
        return ""
    record = view.values.get(name)
    return shown_value(record.payload, 40) if record is not None else ""


def ordered(view: TopicView, prefix: str = "", sort: str = "name") -> list[TopicRecord]:
    records = [r for t, r in view.values.items() if t.startswith(prefix)]
    if sort == "recent":
        return sorted(records, key=lambda r: -r.seq)
    if sort == "publisher":
        return sorted(records, key=lambda r: (r.publisher, r.topic))
    return sorted(records, key=lambda r: r.topic)


def topic_table(view: TopicView, *, prefix: str = "", sort: str = "name", limit: int = 20) -> Table:
    """At most ``limit`` topics under ``prefix``, sorted by ``sort`` (one of SORTS): name,
    value, publisher, and the seq the router stamped on the value."""
    from rich.table import Table
    from rich.text import Text

    records = ordered(view, prefix, sort)
    title = f"topics{' ' + prefix + '*' if prefix else ''} · {len(records)} · by {sort}"
    table = Table(title=title, title_justify="left", expand=False, show_edge=False)
    table.add_column("topic")
    table.add_column("value")
    table.add_column("publisher")
    table.add_column("seq", justify="right")
    for record in records[:limit]:
        table.add_row(record.topic, shown_value(record.payload), record.publisher, f"{record.seq}")
    if len(records) > limit:
        table.add_row(Text(f"… {len(records) - limit} more", style="dim"), "", "", "")
    if not records:
        table.add_row(Text("(no topics)", style="dim"), "", "", "")
    return table
