"""`zs router`: run a router until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from . import logs
from .exits import USAGE, exit_codes, fail
from .logs import QUIET, VERBOSE
from .params import typer_info


def router_command(
    bind: Annotated[
        list[str] | None,
        typer.Option(
            "--bind",
            "-b",
            metavar="URL",
            help="Endpoint to bind (repeatable). Default: $ZS_ROUTER, then the config's,"
            " then a per-user ipc socket.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="TOML config file ([router] and [client] tables)."),
    ] = None,
    cpu: Annotated[
        list[int] | None,
        typer.Option(
            "--cpu",
            metavar="CPU",
            help="Pin the router, libzmq's I/O thread included, to this CPU (repeatable).",
        ),
    ] = None,
    publish: Annotated[
        list[str] | None,
        typer.Option(
            "--publish",
            metavar="URL",
            help="PUB endpoint for `zs monitor` (repeatable; default: one beside each bind).",
        ),
    ] = None,
    no_publish: Annotated[
        bool, typer.Option("--no-publish", help="Publish no state for observers.")
    ] = False,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            metavar="DIR",
            help="Keep the journal here. Default: the config's, then"
            " $XDG_STATE_HOME/zmqswarm/router/ENDPOINT.",
        ),
    ] = None,
    no_journal: Annotated[
        bool,
        typer.Option(
            "--no-journal",
            help="Keep mail in memory only: faster, but a crash loses what was receipted.",
        ),
    ] = False,
    curve_secret: Annotated[
        Path | None,
        typer.Option(
            "--curve-secret",
            metavar="FILE",
            help="The router's CURVE secret key file (`zs keys new router`): every"
            " connection must then present a key from --allow.",
        ),
    ] = None,
    allow: Annotated[
        Path | None,
        typer.Option(
            "--allow",
            metavar="DIR",
            help="Directory of the public keys let in (`zs keys trust`); a key removed"
            " from it is cut off within a second, or at once on SIGHUP.",
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Bind a non-loopback tcp address without CURVE: anyone who reaches it"
            " may connect, under any name.",
        ),
    ] = False,
    metrics: Annotated[
        str | None,
        typer.Option(
            "--metrics",
            metavar="HOST:PORT",
            help="Serve Prometheus metrics over HTTP at http://HOST:PORT/metrics (port 0: a"
            " free one). No authentication: bind loopback unless the network is trusted.",
        ),
    ] = None,
    verbose: Annotated[bool, typer_info(VERBOSE)] = False,
    warnings_only: Annotated[bool, typer_info(QUIET)] = False,
) -> None:
    """Run a router, until SIGTERM or Ctrl-C.

    It holds a mailbox for every name and passes messages on, in order, once each. With its
    journal (the default) a receipt means the message is on disk: a restart keeps it."""
    from zmqswarm.config import load_config
    from zmqswarm.keys import ServerKeys, load_secret
    from zmqswarm.router.endpoints import pin_to_cpus, raise_fd_limit
    from zmqswarm.router.journal import default_data_dir
    from zmqswarm.router.loop import Router
    from zmqswarm.transport import resolve_router_url

    logs.setup(verbose=verbose, warnings_only=warnings_only)
    log = logging.getLogger("zmqswarm.router")
    with exit_codes():
        cfg = load_config(config)
        files = raise_fd_limit()  # a descriptor a connected peer
        cpus = cpu or cfg.router.cpus
        if cpus:
            pin_to_cpus(cpus)  # before the socket: its I/O thread inherits the pinning
        binds = bind or cfg.router.bind or [resolve_router_url(None, cfg.client.router)]
        pub = [] if no_publish else (publish or cfg.router.publish)
        journal: Path | None = None
        if not no_journal and cfg.router.journal:
            configured = cfg.router.data_dir
            journal = data_dir or (Path(configured) if configured else default_data_dir(binds[0]))
        secret = curve_secret or cfg.router.curve_secret
        allowed = allow or (Path(cfg.router.allow) if cfg.router.allow else None)
        if (secret is None) != (allowed is None):
            raise fail(USAGE, "CURVE needs both --curve-secret FILE and --allow DIR")
        router = Router(
            binds,
            options=cfg.router.options(),
            drain_timeout=cfg.router.drain_timeout,
            publish=pub,
            data_dir=journal,
            curve=ServerKeys(*load_secret(secret)) if secret is not None else None,
            allow=allowed,
            names=cfg.router.names,
            insecure=insecure or cfg.router.insecure,
            metrics=metrics or cfg.router.metrics,
        )
        router.install_signal_handlers()
        log.debug("open files allowed: %s", files)
        log.info(
            "zs router listening on %s, publishing state on %s",
            " ".join(router.endpoints),
            " ".join(router.core.publish_endpoints) or "nothing (--no-publish)",
        )
        if allowed is not None:
            known = len(router.gate.allow.keys) if router.gate else 0
            log.info("CURVE on: letting in the %d keys in %s", known, allowed)
        if router.metrics is not None:
            log.info("serving metrics on %s", router.metrics.url)
            if not router.metrics.loopback:
                log.warning(
                    "metrics on %s can be read by anyone who reaches it (no authentication)",
                    router.metrics.url,
                )
        if journal is None:
            log.info("no journal: mail lives in memory, a crash loses what was receipted")
        else:
            kept = router.core.kept()
            log.info(
                "journal %s: restored %d messages for %d names",
                journal,
                sum(kept.values()),
                len(kept),
            )
        router.run()
        log.info("zs router stopped: %s", router.core.stats)
