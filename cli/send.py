"""`zs send`: one message, from an agent's tool call or a script. Agents call it all the
time, so it never imports typer: cli/entry.py parses it with ``params.parse(PARAMS, ...)``,
and cli/main.py builds the typer command from the same PARAMS."""

from __future__ import annotations

import json
import os
import sys

from .common import CONFIG, ROUTER, as_json, check_name, reaching, target, timeout
from .exits import FAILED, UNREACHABLE, USAGE, exit_codes, fail
from .params import argument, option

WAITS = ("none", "accepted", "delivered")

PARAMS = (
    argument("to", "Recipient name.", metavar="TO"),
    argument(
        "message",
        "Text to send; '-' or none: read it from stdin.",
        metavar="MESSAGE",
        required=False,
    ),
    ROUTER,
    option(
        "sender",
        "--from",
        "-f",
        metavar="NAME",
        help="Sender name (default: $ZS_NAME, else the agent of the tmux pane it runs in,"
        " else zs-send-PID).",
    ),
    option(
        "wait",
        "--wait",
        choices=WAITS,
        default="accepted",
        help="Exit once the message is sent (none), in the router's hands (accepted) or"
        " acked by the recipient (delivered).",
    ),
    timeout(10.0, "Seconds to wait for it."),
    option(
        "allow_empty",
        "--allow-empty",
        type=bool,
        default=False,
        help="Send an empty message (refused otherwise).",
    ),
    as_json("Print a JSON object."),
    CONFIG,
)


def run(
    *,
    to: str,
    message: str | None,
    router: str | None,
    sender: str | None,
    wait: str,
    timeout: float,
    allow_empty: bool,
    as_json: bool,
    config: str | None,
) -> None:
    """Send one message; print its ticket."""
    import msgspec

    from zmqswarm.client.sync import Client
    from zmqswarm.config import load_config
    from zmqswarm.errors import DeliveryError, ZsTimeoutError

    check_name("recipient", to)
    name = sender or os.environ.get("ZS_NAME") or pane_agent() or f"zs-send-{os.getpid()}"
    check_name("sender", name)
    with exit_codes():
        cfg = load_config(config)
        where = target(router, config, cfg.client.router)
        payload = read_message(message)
        if not payload and not allow_empty:
            raise fail(USAGE, "empty message: nothing sent (--allow-empty sends it anyway)")
        limit = cfg.router.max_payload  # what a router with the same config takes
        if len(payload) > limit:
            raise fail(
                FAILED,
                f"message of {len(payload)} bytes is over the {limit}-byte limit (max_payload):"
                " raise max-payload in the [router] table of the config file that both"
                " `zs router --config` and `zs send --config` read",
            )
        # Send-only: the name may be a live agent's (a reply from inside its pane).
        options = msgspec.structs.replace(cfg.client.options(), send_only=True, max_payload=limit)
        with reaching(where):
            client = Client(name, router=where.url, options=options)
            linger = timeout  # close() waits for the receipt: exiting earlier can lose it
            try:
                ticket = client.send(to, payload, notify=wait == "delivered")
                if wait != "none":
                    ticket.wait("delivered" if wait == "delivered" else "accepted", timeout)
            except ZsTimeoutError:
                linger = 0
                why = ticket.progress if wait == "delivered" else ""  # the recipient's word
                if wait == "delivered" and not client.close(timeout=0):
                    late = f"{ticket} accepted, not delivered within {timeout} s"
                    raise fail(UNREACHABLE, f"{late}: {why}" if why else late) from None
                raise no_answer(where.url, timeout) from None
            except DeliveryError as exc:
                if exc.code != "too_large":
                    raise
                where_to = "the router's limit is max-payload in the [router] table of its config"
                raise DeliveryError(exc.ticket, exc.code, f"{exc.reason}: {where_to}") from None
            finally:
                unsent = client.close(timeout=linger)
            if unsent:
                raise no_answer(where.url, timeout)
    if as_json:
        state = "sent" if wait == "none" else wait
        sys.stdout.write(json.dumps({"ticket": str(ticket), "to": to, "state": state}) + "\n")
    else:
        sys.stdout.write(f"{ticket}\n")


def no_answer(url: str, timeout: float) -> Exception:
    from zmqswarm.errors import RouterUnavailableError

    return RouterUnavailableError(f"router at {url} did not answer within {timeout} s", url=url)


def read_message(message: str | None) -> bytes:
    if message not in (None, "-"):
        return message.encode()
    if sys.stdin.isatty():  # someone typing, not a pipe: say what is awaited
        sys.stderr.write("zs: reading the message from stdin (Ctrl-D to send)\n")
        sys.stderr.flush()
    return sys.stdin.buffer.read()


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
