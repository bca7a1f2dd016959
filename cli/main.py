"""`zs`: the zmqswarm command line. One module per command; this one wires them together
and maps errors to exit codes. Heavy imports (rich, asyncio, the router) stay inside the
commands that need them, so `zs send` starts fast."""

from __future__ import annotations

import sys

import typer

from .agent import agent_command, hook_command, tag_command
from .demo import demo_command
from .router import router_command
from .send import dead_command, monitor_command, peers_command, recv_command, send_command

app = typer.Typer(
    name="zs",
    help="zmqswarm: messaging for swarms of AI coding agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("router", help="Run a router.")(router_command)
agent_app = typer.Typer(
    no_args_is_help=False,
    invoke_without_command=True,
    help="Deliver messages into tmux panes (`zs agent --name N --pane P`, or `--tagged`).",
)
agent_app.callback(invoke_without_command=True)(agent_command)
agent_app.command("tag", help="Tag a tmux pane as the one an agent name delivers into.")(
    tag_command
)
agent_app.command("hook", help="Report idle/busy from an agent's lifecycle hooks.")(hook_command)
app.add_typer(agent_app, name="agent")
# Short forms, as the README has used them.
app.command("tag", help="Same as `zs agent tag`.")(tag_command)
app.command("hook", help="Same as `zs agent hook`.")(hook_command)
app.command("send", help="Send one message; prints its ticket.")(send_command)
app.command("recv", help="Receive messages as NAME; one line (or JSON object) each.")(recv_command)
app.command("dead", help="List (and optionally drop) the router's dead letters.")(dead_command)
app.command("peers", help="Who is connected, and the mail waiting for each name.")(peers_command)
app.command("monitor", help="A live view of the router: names, mail, throughput.")(monitor_command)
app.command("demo", help="A private router, peers and tmux agents, messages flowing.")(demo_command)


def main() -> None:
    """`zs` through typer for every command (the console script uses cli/entry.py)."""
    sys.exit(app())
