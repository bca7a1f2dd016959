"""`zs dead`: the messages the router gave up on."""

from __future__ import annotations

import json
import sys

from .common import (
    CONFIG,
    ROUTER,
    SECURITY,
    as_json,
    keys,
    payload_fields,
    reaching,
    target,
    timeout,
)
from .exits import exit_codes
from .params import option

PARAMS = (
    ROUTER,
    option(
        "after",
        "--after",
        type=int,
        default=0,
        min=0,
        metavar="ID",
        help="Only dead letters with a higher id.",
    ),
    option(
        "limit",
        "--limit",
        type=int,
        default=100,
        min=1,
        metavar="N",
        help="At most this many (the router caps it).",
    ),
    option(
        "drop_upto",
        "--drop-upto",
        type=int,
        default=0,
        min=0,
        metavar="ID",
        help="First make the router forget dead letters up to this id.",
    ),
    timeout(5.0, "Seconds to wait for the router."),
    as_json("One JSON object per line."),
    *SECURITY,
    CONFIG,
)


def run(
    *,
    router: str | None,
    after: int,
    limit: int,
    drop_upto: int,
    timeout: float,
    as_json: bool,
    curve_secret: str | None,
    router_key: str | None,
    config: str | None,
) -> None:
    """List the messages the router gave up on.

    Their ttl passed, or they were delivered max-attempts times and never acked."""
    from zmqswarm.config import load_config
    from zmqswarm.observe.query import list_dead

    with exit_codes():
        cfg = load_config(config)
        where = target(router, config, cfg.client.router)
        curve = keys(curve_secret, router_key, cfg.client)
        with reaching(where):
            found = list_dead(
                where.url,
                after=after,
                limit=limit,
                drop_upto=drop_upto,
                timeout=timeout,
                curve=curve,
            )
    out = sys.stdout
    for m in found.messages:
        if as_json:
            line: dict[str, object] = {"id": m.id, "to": m.to, "ticket": str(m.ticket)}
            line |= {"reason": m.reason, "age_s": round(m.age, 3), **payload_fields(m.payload)}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        else:
            text = m.payload.decode("utf-8", errors="replace").replace("\n", " ")
            out.write(
                f"{m.id:>6}  {m.to:<16} {m.ticket}  {m.reason:<12} {m.age:8.1f}s  {text[:60]}\n"
            )
    if not as_json:
        shown = len(found.messages)
        sys.stderr.write(f"{shown} shown, {found.total} held, {found.dropped} dropped for room\n")
