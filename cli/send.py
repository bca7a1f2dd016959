"""`zs send` and `zs recv`: one-line access for agents and scripts."""

from __future__ import annotations

import base64
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .exits import UNREACHABLE, USAGE, exit_codes, fail


class WaitFor(StrEnum):
    none = "none"
    accepted = "accepted"
    delivered = "delivered"


RouterOpt = Annotated[
    str | None, typer.Option("--router", "-r", help="Router URL (default: $ZS_ROUTER).")
]
ConfigOpt = Annotated[Path | None, typer.Option(help="TOML config file ([client] table).")]


def _client(name: str, router: str | None, config: Path | None) -> object:
    from zmqswarm.client.sync import Client
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
    from zmqswarm.client.sync import Client
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
                    line = {"sender": msg.sender, "ticket": str(msg.ticket)}
                    typer.echo(json.dumps(line | payload_fields(msg.payload), ensure_ascii=False))
                else:
                    typer.echo(f"{msg.sender}: {msg.text}")
                sys.stdout.flush()
        finally:
            client.close()
        if count and got < count:
            raise fail(UNREACHABLE, f"received {got} of {count} messages within the timeout")


def payload_fields(payload: bytes) -> dict[str, str]:
    """A payload for a JSON line: as text if it is UTF-8, else base64."""
    try:
        return {"payload": payload.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"payload": base64.b64encode(payload).decode(), "encoding": "base64"}


def dead_command(
    router: RouterOpt = None,
    after: Annotated[int, typer.Option(help="Only dead letters with a higher id.")] = 0,
    limit: Annotated[int, typer.Option(help="At most this many (the router caps it).")] = 100,
    drop_upto: Annotated[
        int, typer.Option(help="First make the router forget dead letters up to this id.")
    ] = 0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the router.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the messages the router gave up on (ttl passed, or never acked)."""
    from zmqswarm.observe.query import list_dead

    if limit < 1 or after < 0 or drop_upto < 0:
        raise fail(USAGE, "--limit must be >= 1, --after and --drop-upto >= 0")
    with exit_codes():
        found = list_dead(router, after=after, limit=limit, drop_upto=drop_upto, timeout=timeout)
    for m in found.messages:
        if as_json:
            line: dict[str, object] = {"id": m.id, "to": m.to, "ticket": str(m.ticket)}
            line |= {"reason": m.reason, "age_s": round(m.age, 3), **payload_fields(m.payload)}
            typer.echo(json.dumps(line, ensure_ascii=False))
        else:
            text = m.payload.decode("utf-8", errors="replace").replace("\n", " ")
            typer.echo(
                f"{m.id:>6}  {m.to:<16} {m.ticket}  {m.reason:<12} {m.age:8.1f}s  {text[:60]}"
            )
    if not as_json:
        shown = len(found.messages)
        typer.echo(f"{shown} shown, {found.total} held, {found.dropped} dropped for room", err=True)


def peers_command(
    router: RouterOpt = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the router.")] = 5.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Who is connected, and how much mail waits for each name (offline ones too)."""
    import msgspec

    from zmqswarm.observe.query import list_peers

    with exit_codes():
        items = list_peers(router, timeout=timeout)
    for p in items:
        if as_json:
            typer.echo(json.dumps(msgspec.structs.asdict(p)))
        else:
            seen = f"online {p.idle_ms / 1000:.1f}s" if p.online else "offline"
            line = f"{p.name:<24} {seen:<14} queued {p.queued:<7} inflight {p.inflight:<7}"
            if p.queued + p.inflight:
                line += f" oldest {p.waiting_ms / 1000:.1f}s"
            typer.echo(f"{line} {p.state}".rstrip())


def monitor_command(
    router: RouterOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Print the state once and exit.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per change instead of the view.")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the router.")] = 5.0,
) -> None:
    """A live view of the router: names, mail waiting, throughput, counters."""
    from zmqswarm.observe.monitor import run_monitor

    with exit_codes():
        run_monitor(router, once=once, json=as_json, timeout=timeout)
