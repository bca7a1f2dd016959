"""`zs monitor`: a live view of the router (rich is imported only when it runs)."""

from __future__ import annotations

from .common import CONFIG, ROUTER, SECURITY, as_json, keys, reaching, target, timeout
from .exits import exit_codes
from .params import option

PARAMS = (
    ROUTER,
    option("once", "--once", type=bool, default=False, help="Print the state once and exit."),
    as_json("One JSON object per change instead of the view."),
    option(
        "topics",
        "--topics",
        metavar="PREFIX",
        default="",
        help="Show the topics whose names start with PREFIX (default: all).",
    ),
    option(
        "sort",
        "--sort",
        choices=("name", "recent", "publisher"),
        default="name",
        help="Order of the topics: by name, most recently changed first, or by publisher.",
    ),
    timeout(5.0, "Seconds to wait for the router."),
    *SECURITY,
    CONFIG,
)


def run(
    *,
    router: str | None,
    once: bool,
    as_json: bool,
    timeout: float,
    curve_secret: str | None,
    router_key: str | None,
    topics: str,
    sort: str,
    config: str | None,
) -> None:
    """A live view of the router: names, mail, throughput, topics.

    Follows the router's state events (Ctrl-C to stop); --once prints the state now."""
    from zmqswarm.config import load_config
    from zmqswarm.observe.monitor import run_monitor

    with exit_codes():
        cfg = load_config(config)
        where = target(router, config, cfg.client.router)
        curve = keys(curve_secret, router_key, cfg.client)
        with reaching(where):
            run_monitor(
                where.url,
                once=once,
                json=as_json,
                timeout=timeout,
                topics=topics,
                sort=sort,
                curve=curve,
            )
