"""`zs recv`: receive as NAME, one line (or JSON object) a message."""

from __future__ import annotations

import json
import sys

from .common import (
    CONFIG,
    ROUTER,
    SECURITY,
    as_json,
    check_name,
    keys,
    payload_fields,
    reaching,
    target,
    timeout,
)
from .exits import UNREACHABLE, exit_codes, fail
from .params import argument, option

READY = 5.0  # seconds the router has to welcome us when no --timeout bounds the wait

PARAMS = (
    argument("name", "Receive as this name.", metavar="NAME"),
    ROUTER,
    option(
        "count",
        "--count",
        type=int,
        default=0,
        min=0,
        metavar="N",
        help="Stop after N messages (0: never); fewer within the timeout exit 3.",
    ),
    timeout(
        None,
        f"Stop when nothing arrives for this many seconds. The router must answer within it"
        f" (within {READY:g} s without it), or the command exits 3.",
    ),
    as_json("One JSON object per line."),
    *SECURITY,
    CONFIG,
)


def run(
    *,
    name: str,
    router: str | None,
    count: int,
    timeout: float | None,
    as_json: bool,
    curve_secret: str | None,
    router_key: str | None,
    config: str | None,
) -> None:
    """Receive messages as NAME; one line (or JSON object) each."""
    from zmqswarm.client.sync import Client
    from zmqswarm.config import load_config
    from zmqswarm.errors import RouterUnavailableError, ZsTimeoutError

    check_name("peer", name)
    got = 0
    with exit_codes():
        cfg = load_config(config)
        where = target(router, config, cfg.client.router)
        with reaching(where):
            curve = keys(curve_secret, router_key, cfg.client)
            client = Client(name, router=where.url, options=cfg.client.options(), curve=curve)
            try:
                client.wait_ready(timeout or READY)  # "router down" is not "no mail"
                while not count or got < count:
                    try:
                        msg = client.recv(timeout=timeout)
                    except ZsTimeoutError:
                        if not client.connected:
                            raise RouterUnavailableError(
                                f"router at {where.url} went away and did not come back"
                                f" within {timeout} s",
                                url=where.url,
                            ) from None
                        break
                    got += 1
                    if as_json:
                        line = {"sender": msg.sender, "ticket": str(msg.ticket)}
                        text = json.dumps(line | payload_fields(msg.payload), ensure_ascii=False)
                    else:
                        text = f"{msg.sender}: {msg.text}"
                    sys.stdout.write(text + "\n")
                    sys.stdout.flush()
            finally:
                client.close()
    if count and got < count:
        raise fail(UNREACHABLE, f"received {got} of {count} messages within {timeout} s")
