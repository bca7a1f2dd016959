"""`zs bench`: how fast messages go through a router, measured end to end (in the spirit of
`nats bench` and `redis-benchmark`). Built on ``zmqswarm.bench`` (the workload that
bench/peers runs against NATS JetStream and Redis Streams), zmqswarm only."""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .common import CONFIG, CURVE_SECRET, ROUTER_KEY, keys
from .exits import DENIED, ERROR, FAILED, UNREACHABLE, USAGE, exit_codes, fail
from .params import typer_info

if TYPE_CHECKING:
    from zmqswarm.bench.spec import Spec

NAMES = "bench-*"  # every peer's name (zmqswarm.bench.zs.name): a key must be let use them


def bench_command(
    router: Annotated[
        str | None,
        typer.Option(
            "--router",
            "-r",
            metavar="URL",
            help="Measure the router at URL (its CPU is not counted). Default: the config's"
            " [client] router (with --config), else a private router started for the run, on"
            " a free loopback TCP port ($ZS_ROUTER is not read).",
        ),
    ] = None,
    journal: Annotated[
        bool,
        typer.Option(
            "--journal",
            help="Give the private router a journal (in a temp dir): a receipt then waits"
            " for its fsync.",
        ),
    ] = False,
    senders: Annotated[int, typer.Option("--senders", min=1, max=1000, help="Sending peers.")] = 1,
    recipients: Annotated[
        int,
        typer.Option(
            "--recipients", min=1, max=1000, help="Receiving peers (each sender round-robin)."
        ),
    ] = 1,
    peers: Annotated[
        int,
        typer.Option(
            "--peers", min=0, max=100_000, help="Idle peers connected throughout (scale)."
        ),
    ] = 0,
    size: Annotated[
        int,
        typer.Option(
            "--size",
            min=16,
            max=1 << 20,
            metavar="BYTES",
            help="Payload size (at least 16: sender, recipient, seq and due time).",
        ),
    ] = 64,
    count: Annotated[
        int,
        typer.Option("--count", "-n", min=1, help="Messages per sender (closed loop)."),
    ] = 100_000,
    rate: Annotated[
        float,
        typer.Option(
            "--rate",
            min=0,
            metavar="MSG/S",
            help="Open loop: offer this many msg/s in all for --seconds, and report latency"
            " (due time -> handed over). 0: closed loop, as fast as it goes.",
        ),
    ] = 0.0,
    seconds: Annotated[
        float,
        typer.Option("--seconds", min=0.1, help="Length of an open-loop run (with --rate)."),
    ] = 5.0,
    window: Annotated[
        int,
        typer.Option("--window", min=1, help="Unreceipted messages a sender may have."),
    ] = 8192,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help="Send 256 messages at a time inside Client.batch() (a frame for many"
            " messages, as a pipeline), instead of a send() and a frame each.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object.")
    ] = False,
    curve_secret: Annotated[str | None, typer_info(CURVE_SECRET)] = None,
    router_key: Annotated[str | None, typer_info(ROUTER_KEY)] = None,
    config: Annotated[str | None, typer_info(CONFIG)] = None,
) -> None:
    """Send messages through a router and report msg/s, latency, CPU per message and
    whether every message arrived once and in order.

    Every message is receipted (publish acknowledged) and acked by its recipient; senders
    and recipients are processes of their own. Exit 4 if a message was lost, duplicated or
    out of order, 3 if the router does not answer, 8 if it refuses our CURVE key or names.

    A router that requires CURVE keys is reached with --curve-secret and --router-key (or
    $ZS_CURVE_SECRET and $ZS_ROUTER_KEY, or the config's [client] table), by every peer of
    the run with that one key; the private router has no CURVE. The peers are named
    bench-TAG-s0.., bench-TAG-r0.., bench-TAG-idle0.. and bench-TAG-probe0 (TAG: six hex
    digits, new each run): a key may use them once the router's [router.names] lets it, e.g.
    alice = ["alice", "alice.*", "bench-*"] (a key listed there may use only the names
    listed)."""
    from zmqswarm.bench import zs
    from zmqswarm.bench.spec import Spec
    from zmqswarm.bench.workload import run
    from zmqswarm.config import load_config

    with exit_codes():
        cfg = load_config(config)
    url = router or cfg.client.router  # not $ZS_ROUTER: a bench never loads a live router unasked
    if url and journal:
        given = "--router" if router else f"[client] router in {config}"
        raise fail(USAGE, f"--journal is for the private router; not with {given}")
    if not url and (curve_secret or router_key):
        raise fail(
            USAGE,
            "--curve-secret and --router-key are for --router: the private router has no CURVE",
        )
    if rate > 0 and rate / senders < 1 / seconds:
        raise fail(USAGE, f"--rate {rate:g} over --seconds {seconds:g} gives a sender no message")
    with exit_codes():
        curve = keys(curve_secret, router_key, cfg.client) if url else None
    spec = Spec(
        system=zs.__name__,
        variant="+".join(v for v, on in (("journal", journal), ("batch", batch)) if on),
        senders=senders,
        recipients=recipients,
        count=count,
        size=size,
        rate=rate,
        seconds=seconds,
        warmup=min(1.0, seconds / 5),
        window=window,
        idle=peers,
        address=url or "",
        curve=curve,
    )
    if url:
        _probe(spec, zs.name(spec, "probe", 0))
    try:
        result = _run(spec, run, quiet=as_json)
    except (RuntimeError, TimeoutError) as exc:  # a worker that failed says why, in one line
        raise fail(ERROR, str(exc)) from None
    out = {k: v for k, v in result.items() if k != "errors" or v}
    if as_json:
        sys.stdout.write(json.dumps(_finite(out)) + "\n")
    else:
        _table(result)
    if not result["ok"]:
        raise fail(FAILED, "not every message arrived once and in order: see the checks")


def _probe(spec: Spec, name: str) -> None:
    """The router at ``spec.address`` answers, and lets our key (if any) in under the
    bench's names: else exit 3 or 8 before any worker starts."""
    from zmqswarm.client.sync import Client
    from zmqswarm.errors import AccessDeniedError, RouterUnavailableError
    from zmqswarm.protocol.options import ClientOptions

    options = ClientOptions(send_only=True)
    with exit_codes():  # a malformed URL, say
        try:
            with Client(name, router=spec.address, options=options, curve=spec.curve) as c:
                c.wait_ready(timeout=5)
        except AccessDeniedError as exc:
            raise fail(DENIED, f"{exc}{_denied_hint(spec, name, str(exc))}") from None
        except RouterUnavailableError as exc:
            raise fail(UNREACHABLE, f"{exc}: is `zs router` running there?") from None


def _denied_hint(spec: Spec, name: str, why: str) -> str:
    """What to do about a refusal: give keys, or let the key use the bench's names (a
    refusal of the name names it)."""
    if spec.curve is None:
        return " (zs bench takes --curve-secret FILE --router-key FILE, or $ZS_CURVE_SECRET ...)"
    if name in why:
        return (
            f" (every peer of the bench is named {NAMES}: the router's [router.names] can let"
            " the key use those names)"
        )
    return ""


def _run(spec: Any, run: Any, quiet: bool) -> dict[str, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    console = Console(stderr=True)
    what = f"{spec.senders} -> {spec.recipients}, {spec.size} B"
    what += f", {spec.rate:,.0f} msg/s offered" if spec.rate else ", closed loop"
    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, disable=quiet or not console.is_terminal) as bar:
        task = bar.add_task(what, total=spec.total())

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done)

        result: dict[str, Any] = run(spec, progress=progress)
    return result


def _finite(value: Any) -> Any:
    """NaN (a figure not measured) as null: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _table(r: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    spec = r["spec"]
    table = Table(title=f"zs bench: {r['version']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    journaled = " (journal)" if "journal" in spec["variant"] else ""
    curve = " (CURVE)" if spec["curve"] else ""
    table.add_row(
        "router", f"{spec['address']}{curve}" if spec["address"] else f"a private router{journaled}"
    )
    shape = f"{spec['senders']} -> {spec['recipients']}, {spec['size']} B"
    if "batch" in spec["variant"]:
        shape += ", sent in batches"
    if spec["idle"]:
        shape += f", {spec['idle']} idle peers"
    table.add_row("workload", shape)
    table.add_row("delivered", f"{r['delivered']:,} of {r['expected']:,} in {r['seconds']:.2f} s")
    if spec["rate"]:
        table.add_row("offered", f"{spec['rate']:,.0f} msg/s")
        lat = r["latency_us"]
        table.add_row(
            "latency us",
            "  ".join(f"{p} {lat[p]:,.0f}" for p in ("p50", "p90", "p99", "p99.9", "max")),
        )
    else:
        table.add_row("throughput", f"{r['msgs_per_s']:,.0f} msg/s")
    roles = r["cpu_us_per_msg_by_role"]
    counted = "" if r["broker_cpu_counted"] else " (router not counted)"
    table.add_row(
        "CPU us/msg",
        f"{r['cpu_us_per_msg']:.1f}{counted}: senders {roles['senders']:.1f}, router "
        f"{roles['broker']:.1f}, recipients {roles['recipients']:.1f}"
        + (f", idle {roles['idle']:.1f}" if spec["idle"] else ""),
    )
    checks = f"missing {r['missing']}, duplicates {r['duplicates']}"
    checks += f", out of order {r['out_of_order']}, unreceipted {r['unacked']}"
    table.add_row("checks", ("ok: " if r["ok"] else "FAILED: ") + checks)
    for error in r["errors"]:
        table.add_row("error", error)
    Console().print(table)
