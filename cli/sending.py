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
    import msgspec

    from zmqswarm.client.sync import Client
    from zmqswarm.config import load_config
    from zmqswarm.errors import ZsTimeoutError
    from zmqswarm.transport import resolve_router_url

    payload = sys.stdin.buffer.read() if message in (None, "-") else message.encode()
    name = sender or os.environ.get("ZS_NAME") or pane_agent() or f"zs-send-{os.getpid()}"
    with exit_codes():
        cfg = load_config(config).client
        url = resolve_router_url(router, cfg.router)
        # Send-only: the name may be a live agent's (a reply from inside its pane).
        options = msgspec.structs.replace(cfg.options(), send_only=True)
        client = Client(name, router=url, options=options)
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


def pane_agent() -> str | None:
    """Inside a tmux pane tagged ``@zs_agent=<name>`` (``zs agent tag``): that name, so an
    agent's ``zs send`` replies come from it. One tmux call (~2 ms), only inside tmux."""
    pane = os.environ.get("TMUX_PANE")
    if not pane or not os.environ.get("TMUX"):
        return None
    import subprocess

    try:
        done = subprocess.run(
            ["tmux", "display-message", "-p", "-t", pane, "#{@zs_agent}"],
            capture_output=True, text=True, timeout=2,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    name = done.stdout.strip()
    return name if done.returncode == 0 and name else None
