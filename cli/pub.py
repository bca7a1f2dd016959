"""`zs pub`: publish one topic value, from a shell script or an agent's hook."""

from __future__ import annotations

import os

from .common import CONFIG, ROUTER, SECURITY, check_name, keys, reaching, target, timeout
from .exits import FAILED, USAGE, exit_codes, fail
from .params import argument, option
from .send import pane_agent, read_message

PARAMS = (
    argument("topic", "Topic name (the name rule, up to 256 characters).", metavar="TOPIC"),
    argument(
        "value", "The value; '-' or none: read it from stdin.", metavar="VALUE", required=False
    ),
    ROUTER,
    option(
        "sender",
        "--from",
        "-f",
        metavar="NAME",
        help="Publisher name (default: $ZS_NAME, else the agent of the tmux pane it runs in,"
        " else zs-pub-PID).",
    ),
    option(
        "ttl",
        "--ttl",
        type=float,
        default=0.0,
        min=0,
        metavar="SECONDS",
        help="The router forgets the value after this long, unless a newer one comes (0: never).",
    ),
    timeout(5.0, "Seconds to wait for the router."),
    *SECURITY,
    CONFIG,
)


def run(
    *,
    topic: str,
    value: str | None,
    router: str | None,
    sender: str | None,
    ttl: float,
    timeout: float,
    curve_secret: str | None,
    router_key: str | None,
    config: str | None,
) -> None:
    """Publish the latest value of TOPIC (no answer: at most once, like every publish).

    Observers (`zs sub`, `zs monitor`) see it within a tick; the router keeps the last value
    of each topic, so one that starts later sees it too."""
    import msgspec

    from zmqswarm.config import load_config
    from zmqswarm.protocol.topic_feed import TOPIC_RULE, valid_topic

    if not valid_topic(topic):
        raise fail(USAGE, f"invalid topic {topic!r}: {TOPIC_RULE}")
    name = sender or os.environ.get("ZS_NAME") or pane_agent() or f"zs-pub-{os.getpid()}"
    check_name("publisher", name)
    with exit_codes():
        cfg = load_config(config)
        where = target(router, config, cfg.client.router)
        curve = keys(curve_secret, router_key, cfg.client)
        payload = read_message(value)
        limit = cfg.router.options().max_topic_value
        if len(payload) > limit:
            raise fail(FAILED, f"value of {len(payload)} bytes is over the {limit}-byte limit")
        options = msgspec.structs.replace(
            cfg.client.options(), send_only=True, max_topic_value=limit
        )
        from zmqswarm.client.sync import Client

        with reaching(where):
            client = Client(name, router=where.url, options=options, curve=curve)
            try:
                client.wait_ready(timeout)  # a router that is not there is an error, not a drop
                client.publish(topic, payload, ttl=ttl or None)
            finally:
                client.close(timeout=0)
