"""What `zs send` does, with no typer import: both the typer command and the fast entry
path (cli/entry.py) call ``do_send``."""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

from .exits import UNREACHABLE, exit_codes, fail

if TYPE_CHECKING:
    from pathlib import Path

WAITS = ("none", "accepted", "delivered")


def do_send(
    to: str,
    message: str | None,
    router: str | None,
    sender: str | None,
    wait: str,
    timeout: float,
    as_json: bool,
    config: Path | str | None,
) -> None:
    from zmqswarm.client import Client
    from zmqswarm.config import load_config
    from zmqswarm.errors import ZsTimeoutError
    from zmqswarm.transport import resolve_router_url

    payload = sys.stdin.buffer.read() if message in (None, "-") else message.encode()
    name = sender or os.environ.get("ZS_NAME") or f"zs-send-{os.getpid()}"
    with exit_codes():
        cfg = load_config(config).client
        url = resolve_router_url(router, cfg.router)
        client = Client(name, router=url, options=cfg.options())
        linger = timeout  # close() waits for the receipt: exiting earlier can lose the message
        try:
            ticket = client.send(to, payload, notify=wait == "delivered")
            state = "sent"
            if wait != "none":
                ticket.wait("delivered" if wait == "delivered" else "accepted", timeout)
                state = wait
        except ZsTimeoutError:
            linger = 0
            if wait == "delivered" and not client.close(timeout=0):
                raise fail(
                    UNREACHABLE, f"{ticket} accepted, not delivered within {timeout} s"
                ) from None
            raise fail(UNREACHABLE, f"router at {url} did not answer within {timeout} s") from None
        finally:
            unsent = client.close(timeout=linger)
        if unsent:
            raise fail(UNREACHABLE, f"router at {url} did not answer within {timeout} s")
        if as_json:
            sys.stdout.write(json.dumps({"ticket": str(ticket), "to": to, "state": state}) + "\n")
        else:
            sys.stdout.write(f"{ticket}\n")
