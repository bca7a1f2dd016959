"""`zs agent`: deliver messages for NAME into a tmux pane."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated

import typer

from . import logs
from .common import CONFIG, CURVE_SECRET, ROUTER, ROUTER_KEY, keys, target
from .exits import USAGE, exit_codes, fail
from .logs import QUIET, VERBOSE
from .params import typer_info

SOCKET_NAME = typer.Option("-L", metavar="NAME", help="tmux socket name.")
SOCKET_PATH = typer.Option("-S", metavar="PATH", help="tmux socket path.")


def agent_command(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Option("--name", "-n", metavar="NAME", help="Peer name to receive as.")
    ] = None,
    tagged: Annotated[
        bool,
        typer.Option(
            "--tagged", help="Serve every pane tagged @zs_agent=NAME, each as its own NAME."
        ),
    ] = False,
    pane: Annotated[
        str | None,
        typer.Option(
            "--pane",
            "-p",
            metavar="PANE",
            help="Target pane, e.g. %3. Default: the pane tagged with NAME.",
        ),
    ] = None,
    socket_name: Annotated[str | None, SOCKET_NAME] = None,
    socket_path: Annotated[str | None, SOCKET_PATH] = None,
    router: Annotated[
        str | None,
        typer.Option("--router", "-r", metavar="URL", help=ROUTER.help),
    ] = None,
    journal: Annotated[
        str | None,
        typer.Option(metavar="FILE", help="Intent journal (default: $XDG_STATE_HOME/zmqswarm/)."),
    ] = None,
    profile: Annotated[
        str,
        typer.Option(
            metavar="PROFILE", help="Readiness profile: a name in configs/profiles, or a path."
        ),
    ] = "plain",
    quiet: Annotated[
        float | None,
        typer.Option(
            "--quiet",
            metavar="SECONDS",
            help="Seconds the pane must be unchanged (overrides the profile).",
        ),
    ] = None,
    max_hold: Annotated[
        float | None,
        typer.Option(
            "--max-hold",
            metavar="SECONDS",
            help="Seconds a message may wait for its pane before it is given up as a dead"
            " letter with the reason; 0: no bound (overrides the profile's).",
        ),
    ] = None,
    curve_secret: Annotated[
        str | None, typer.Option("--curve-secret", metavar="FILE", help=CURVE_SECRET.help)
    ] = None,
    router_key: Annotated[
        str | None, typer.Option("--router-key", metavar="FILE", help=ROUTER_KEY.help)
    ] = None,
    config: Annotated[
        str | None, typer.Option("--config", metavar="FILE", help=CONFIG.help)
    ] = None,
    verbose: Annotated[bool, typer_info(VERBOSE)] = False,
    warnings_only: Annotated[bool, typer_info(QUIET)] = False,
) -> None:
    if ctx.invoked_subcommand is not None:
        return  # `zs agent tag ...` / `zs agent hook ...`
    if not name and not tagged:
        raise fail(USAGE, "give --name NAME (with or without --pane), or --tagged")
    if pane and not name:
        raise fail(USAGE, "--pane needs --name")

    import msgspec

    from zmqswarm.agent.profiles import load_profile
    from zmqswarm.agent.service import run_agent

    logs.setup(verbose=verbose, warnings_only=warnings_only)

    from zmqswarm.config import load_config

    with exit_codes():
        chosen = load_profile(profile)
        cfg = load_config(config)
        url = target(router, config, cfg.client.router).url
        curve = keys(curve_secret, router_key, cfg.client)
    if quiet is not None:
        chosen = msgspec.structs.replace(chosen, quiet=quiet)
    if max_hold is not None:
        if max_hold < 0:
            raise fail(USAGE, "--max-hold must be >= 0")
        chosen = msgspec.structs.replace(chosen, max_hold=max_hold)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(
            name,
            pane,
            tagged=tagged,
            router=url,
            socket_name=socket_name,
            socket_path=socket_path,
            journal=journal,
            profile=chosen,
            stop=stop,
            curve=curve,
        )

    with exit_codes():
        asyncio.run(main())


def tag_command(
    target: Annotated[
        str, typer.Argument(metavar="PANE", help="Pane to tag, e.g. %3 or session:window.pane.")
    ],
    name: Annotated[str, typer.Argument(metavar="NAME", help="Agent name the pane belongs to.")],
    socket_name: Annotated[str | None, SOCKET_NAME] = None,
    socket_path: Annotated[str | None, SOCKET_PATH] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            metavar="PROFILE", help="Readiness profile of the program in the pane (@zs_profile)."
        ),
    ] = None,
) -> None:
    """Set @zs_agent=NAME on a pane, so `zs agent --name NAME` delivers there."""
    from zmqswarm.agent.panes import PROFILE, TAG

    if profile is not None:
        from zmqswarm.agent.profiles import load_profile

        with exit_codes():
            load_profile(profile)  # a typo fails here, not in the agent later
        set_pane_option(socket_name, socket_path, target, PROFILE, profile)
    set_pane_option(socket_name, socket_path, target, TAG, name, ring=True)


def hook_command(
    state: Annotated[
        str, typer.Argument(metavar="STATE", help="idle (ready for a message) or busy.")
    ],
    event: Annotated[
        str | None,
        typer.Argument(
            metavar="EVENT",
            help="Ignored: the JSON event Codex's notify appends.",
            show_default=False,
        ),
    ] = None,
    pane: Annotated[
        str | None,
        typer.Option("--pane", metavar="PANE", help="Pane (default: $TMUX_PANE, the caller's)."),
    ] = None,
    socket_name: Annotated[str | None, SOCKET_NAME] = None,
    socket_path: Annotated[str | None, SOCKET_PATH] = None,
) -> None:
    """For an agent's lifecycle hooks (Claude Code Stop/UserPromptSubmit, Codex notify)."""
    import os

    from zmqswarm.agent.service import STATE

    if state not in ("idle", "busy"):
        raise fail(USAGE, f"state must be idle or busy, not {state!r}")
    target = pane or os.environ.get("TMUX_PANE")
    if not target:
        raise SystemExit("zs: no --pane and no $TMUX_PANE: not inside tmux?")
    set_pane_option(socket_name, socket_path, target, STATE, state)


def set_pane_option(
    socket_name: str | None,
    socket_path: str | None,
    pane: str,
    option: str,
    value: str,
    *,
    ring: bool = False,
) -> None:
    """One ``tmux set-option -p``; a tmux error becomes one line and exit code 1. With
    ``ring``, running agents are told at once (the pane hooks' wait-for channel)."""
    import subprocess

    from zmqswarm.agent.gateway import tmux_argv
    from zmqswarm.agent.panes import RING

    argv = [*tmux_argv(socket_name, socket_path), "set-option", "-p", "-t", pane, option, value]
    if ring:
        argv += [";", *RING]
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"zs: tmux: {done.stderr.strip()}")
