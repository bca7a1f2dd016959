"""`zs bench`: how fast messages go through a router, measured end to end (in the spirit of
`nats bench` and `redis-benchmark`). Built on ``zmqswarm.bench`` (the workload that
bench/peers runs against NATS JetStream and Redis Streams), zmqswarm only."""

from __future__ import annotations

import json
import math
import sys
from typing import Annotated, Any

import typer

from .exits import FAILED, UNREACHABLE, fail


def bench_command(
    router: Annotated[
        str | None,
        typer.Option(
            "--router",
            "-r",
            metavar="URL",
            help="Measure the router at URL (its CPU is not counted). Default: a private"
            " router started for the run, on a free loopback TCP port.",
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
) -> None:
    """Send messages through a router and report msg/s, latency, CPU per message and
    whether every message arrived once and in order.

    Every message is receipted (publish acknowledged) and acked by its recipient; senders
    and recipients are processes of their own. Exit 4 if a message was lost, duplicated or
    out of order, 3 if the router does not answer."""
    from zmqswarm.bench import zs
    from zmqswarm.bench.workload import Spec, run

    if router and journal:
        raise fail(2, "--journal is for the private router; not with --router")
    if rate > 0 and rate / senders < 1 / seconds:
        raise fail(2, f"--rate {rate:g} over --seconds {seconds:g} gives a sender no message")
    if router:
        _probe(router)
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
        address=router or "",
    )
    result = _run(spec, run, quiet=as_json)
    out = {k: v for k, v in result.items() if k != "errors" or v}
    if as_json:
        sys.stdout.write(json.dumps(_finite(out)) + "\n")
    else:
        _table(result)
    if not result["ok"]:
        raise fail(FAILED, "not every message arrived once and in order: see the checks")


def _probe(url: str) -> None:
    from zmqswarm.client.sync import Client
    from zmqswarm.errors import RouterUnavailableError
    from zmqswarm.protocol.options import ClientOptions

    try:
        with Client("zs-bench-probe", router=url, options=ClientOptions(send_only=True)) as c:
            c.wait_ready(timeout=5)
    except RouterUnavailableError as exc:
        raise fail(UNREACHABLE, f"{exc}: is `zs router` running there?") from None


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
    table.add_row("router", spec["address"] or f"a private router{journaled}")
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
