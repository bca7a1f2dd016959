"""`zs peers`: who the router knows, and the mail waiting for each."""

from __future__ import annotations

import json
import sys

from .common import CONFIG, ROUTER, SECURITY, as_json, keys, reaching, target, timeout
from .exits import exit_codes

PARAMS = (
    ROUTER,
    timeout(5.0, "Seconds to wait for the router."),
    as_json("One JSON object per line."),
    *SECURITY,
    CONFIG,
)

ROW = "{:<24} {:<14} {:>7} {:>8} {:>7}  {:<24} {}"


def run(
    *,
    router: str | None,
    timeout: float,
    as_json: bool,
    curve_secret: str | None,
    router_key: str | None,
    config: str | None,
) -> None:
    """Who is connected, the mail waiting for each name, and what each is doing.

    Names that are offline but have mail waiting are listed too. STATE is what the peer
    reports (a tmux agent: its pane); DOING the value it last published under its own name
    (`zs pub NAME VALUE`)."""
    import msgspec

    from zmqswarm.config import load_config
    from zmqswarm.observe.observer import Observer
    from zmqswarm.observe.query import list_peers
    from zmqswarm.observe.topic_table import doing

    with exit_codes():
        cfg = load_config(config)
        where = target(router, config, cfg.client.router)
        curve = keys(curve_secret, router_key, cfg.client)
        with reaching(where):
            items = list_peers(where.url, timeout=timeout, curve=curve)
            topics = Observer(where.url, state=False, topics="", timeout=timeout, curve=curve)
            topics.snapshot()  # what each name last published under its own name
    view = topics.topics
    out = sys.stdout
    if as_json:
        for p in items:
            line = msgspec.structs.asdict(p) | {"doing": doing(view, p.name)}
            out.write(json.dumps(line) + "\n")
        return
    if not items:
        out.write(f"no peers known to {where.url}\n")
        return
    header = ROW.format("NAME", "SEEN", "QUEUED", "INFLIGHT", "OLDEST", "STATE", "DOING")
    out.write(header.rstrip() + "\n")
    for p in items:
        seen = f"online {p.idle_ms / 1000:.1f}s" if p.online else "offline"
        oldest = f"{p.waiting_ms / 1000:.1f}s" if p.queued + p.inflight else "-"
        row = ROW.format(p.name, seen, p.queued, p.inflight, oldest, p.state, doing(view, p.name))
        out.write(row.rstrip() + "\n")
