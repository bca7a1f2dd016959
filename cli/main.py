"""`zs`: the zmqswarm command line. One module per command; this one wires them together.
Heavy imports (rich, asyncio, the router) stay inside the commands that need them, and
the commands that talk to a router declare their options once (cli/params.py), from which
both their typer command and `zs send`'s fast path (cli/entry.py) are built."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from . import dead, keys, monitor, peers, pub, recv, send, sub
from .agent import agent_command, hook_command, tag_command
from .bench import bench_command
from .demo import demo_command
from .params import typer_command
from .router import router_command


class Command(TyperCommand):
    """Click's own usage line and argument list (``TO [MESSAGE]``), not typer's
    (``{TO} [MESSAGE]``, ``TO <str>``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [_usage(p) for p in self.get_params(ctx) if _is_argument(p)]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        params = self.get_params(ctx)
        args = [(_usage(p), getattr(p, "help", None) or "") for p in params if _is_argument(p)]
        opts = [r for p in params if not _is_argument(p) and (r := p.get_help_record(ctx))]
        for title, rows in (("Arguments", args), ("Options", opts)):
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


def _is_argument(p: Any) -> bool:
    return bool(p.param_type_name == "argument")


def _usage(p: Any) -> str:
    name = str(p.metavar or p.name.upper())
    return name if p.required else f"[{name}]"


# Plain click help and errors (rich_markup_mode=None): rich would eat "[client]" in help
# texts, and `zs send`'s fast path hands its errors to these same click messages.
SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="zs",
    help="zmqswarm: messaging for swarms of AI coding agents.",
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=SETTINGS,
    pretty_exceptions_enable=False,
)


def show_version(value: bool) -> None:
    if value:
        from zmqswarm import __version__

        typer.echo(f"zs (zmqswarm) {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=show_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """zmqswarm: messaging for swarms of AI coding agents."""


app.command("router", cls=Command)(router_command)
agent_app = typer.Typer(
    no_args_is_help=False,
    invoke_without_command=True,
    subcommand_metavar="[COMMAND [ARGS]...]",
    rich_markup_mode=None,
    context_settings=SETTINGS,
    help="Deliver messages into tmux panes.\n\nOne pane: `zs agent --name N --pane P`;"
    " every tagged pane, each as its own name: `zs agent --tagged`.",
)
agent_app.callback(invoke_without_command=True)(agent_command)
agent_app.command(
    "tag", cls=Command, help="Tag a tmux pane as the one an agent name delivers into."
)(tag_command)
agent_app.command("hook", cls=Command, help="Report idle/busy from an agent's lifecycle hooks.")(
    hook_command
)
app.add_typer(agent_app, name="agent")
# Short forms, as the README has used them.
app.command("tag", cls=Command, help="Same as `zs agent tag`.")(tag_command)
app.command("hook", cls=Command, help="Same as `zs agent hook`.")(hook_command)
for module in (send, recv, pub, sub, dead, peers, monitor):
    name = module.__name__.rsplit(".", 1)[-1]
    app.command(name, cls=Command)(typer_command(module.PARAMS, module.run))
keys_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=SETTINGS,
    help="CURVE keys: make them, and choose which a router lets in.",
)
keys_app.command("new", cls=Command)(keys.new_command)
keys_app.command("trust", cls=Command)(keys.trust_command)
keys_app.command("revoke", cls=Command)(keys.revoke_command)
keys_app.command("list", cls=Command)(keys.list_command)
app.add_typer(keys_app, name="keys")
app.command("bench", cls=Command)(bench_command)
app.command("demo", cls=Command, help="A private router, peers and tmux agents, messages flowing.")(
    demo_command
)


def main() -> None:
    """`zs` through typer for every command (the console script is cli/entry.py)."""
    app(prog_name="zs")
