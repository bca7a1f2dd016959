"""`zs send` and `zs recv`: one-line access for agents and scripts."""

from __future__ import annotations

import base64
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .exits import UNREACHABLE, exit_codes, fail


class WaitFor(StrEnum):
    none = "none"
    accepted = "accepted"
    delivered = "delivered"


RouterOpt = Annotated[
    str | None, typer.Option("--router", "-r", help="Router URL (default: $ZS_ROUTER).")
]
ConfigOpt = Annotated[Path | None, typer.Option(help="TOML config file ([client] table).")]


def _client(name: str, router: str | None, config: Path | None) -> object:
    from zmqswarm.client import Client
    from zmqswarm.config import load_config
    from zmqswarm.transport import resolve_router_url

    cfg = load_config(config).client
    return Client(name, router=resolve_router_url(router, cfg.router), options=cfg.options())


def send_command(
    to: Annotated[str, typer.Argument(help="Recipient name.")],
    message: Annotated[
        str | None, typer.Argument(help="Text to send; '-' or absent reads stdin.")
    ] = None,
    router: RouterOpt = None,
    sender: Annotated[
        str | None, typer.Option("--from", "-f", help="Sender name (default: $ZS_NAME).")
    ] = None,
    wait: Annotated[WaitFor, typer.Option(help="What to wait for before exiting.")] = (
        WaitFor.accepted
    ),
    timeout: Annotated[float, typer.Option(help="Seconds to wait.")] = 10.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    config: ConfigOpt = None,
) -> None:
    # `zs send` normally never gets here: cli/entry.py parses it without typer (start-up
    # time). This is the same command for `zs --help`, CliRunner and `python -m`.
    from .sending import do_send

    do_send(to, message, router, sender, wait.value, timeout, as_json, config)


def recv_command(
    name: Annotated[str, typer.Argument(help="Receive as this name.")],
    router: RouterOpt = None,
    count: Annotated[int, typer.Option(help="Stop after N messages (0: forever).")] = 0,
    timeout: Annotated[
        float | None, typer.Option(help="Stop when nothing arrives for this many seconds.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    config: ConfigOpt = None,
) -> None:
    from zmqswarm.client import Client
    from zmqswarm.errors import ZsTimeoutError

    with exit_codes():
        client = _client(name, router, config)
        assert isinstance(client, Client)
        got = 0
        try:
            while not count or got < count:
                try:
                    msg = client.recv(timeout=timeout)
                except ZsTimeoutError:
                    break
                got += 1
                if as_json:
                    try:
                        body, encoding = msg.payload.decode("utf-8"), "utf-8"
                    except UnicodeDecodeError:
                        body, encoding = base64.b64encode(msg.payload).decode(), "base64"
                    line = {
                        "sender": msg.sender,
                        "ticket": str(msg.ticket),
                        "payload": body,
                        "encoding": encoding,
                    }
                    typer.echo(json.dumps(line, ensure_ascii=False))
                else:
                    typer.echo(f"{msg.sender}: {msg.text}")
                sys.stdout.flush()
        finally:
            client.close()
        if count and got < count:
            raise fail(UNREACHABLE, f"received {got} of {count} messages within the timeout")
