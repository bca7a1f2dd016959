"""The control-mode gateway against a real, private tmux server."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
from collections.abc import Awaitable, Callable

import pytest

from zmqswarm.agent.gateway import ANCHOR, ControlClient, TmuxError, quote

NASTY = [
    "plain",
    "#{session_name} $HOME ~ ; \\; trailing;",
    "'single' \"double\" `back`",
    "tabs\tand\nnew\nlines\r\n",
    "utf-8: żółw 🐢 — ok",
    "esc \x1b[201~ end-of-paste and bell \x07",
    "#",
    "-t",
]
QUOTED = re.compile(r'"(?:[A-Za-z0-9 _.,:/=%@+\-]|\\[0-7]{3})*"')


def run(socket: str, body: Callable[[ControlClient], Awaitable[None]]) -> None:
    async def main() -> None:
        client = ControlClient(socket)
        await client.run_subprocess("new-session", "-d", "-s", "home")  # we never start one
        try:
            await asyncio.wait_for(body(client), 20)
        finally:
            await client.close()

    asyncio.run(main())


@pytest.mark.parametrize("text", [*NASTY, ""])
def test_quote_leaves_no_bare_metacharacter(text: str) -> None:
    assert QUOTED.fullmatch(quote(text)), quote(text)


def test_every_byte_arrives_exactly(tmux_socket: str) -> None:
    async def body(client: ControlClient) -> None:
        assert await client.command("display-message", "-p", "-t", ANCHOR, "#{session_name}") == [
            ANCHOR
        ]
        for i, text in enumerate(NASTY):
            await client.command("set-buffer", "-b", f"zs-{i}", "--", text)
        assert client.fallbacks == 0

    run(tmux_socket, body)
    for i, text in enumerate(NASTY):
        saved = subprocess.run(
            ["tmux", "-L", tmux_socket, "save-buffer", "-b", f"zs-{i}", "-"], capture_output=True
        )
        assert saved.stdout == text.encode(), text


def test_errors_come_back_with_tmux_s_reason(tmux_socket: str) -> None:
    async def body(client: ControlClient) -> None:
        with pytest.raises(TmuxError, match="can't find pane"):
            await client.command("send-keys", "-t", "%999", "x")
        assert await client.command("display-message", "-p", "still here") == ["still here"]

    run(tmux_socket, body)


def test_concurrent_commands_pair_with_their_replies(tmux_socket: str) -> None:
    async def body(client: ControlClient) -> None:
        replies = await asyncio.gather(
            *(client.command("display-message", "-p", f"reply {i}") for i in range(200))
        )
        assert replies == [[f"reply {i}"] for i in range(200)]

    run(tmux_socket, body)


def test_a_dead_server_fails_pending_work_and_the_next_command_reconnects(
    tmux_socket: str,
) -> None:
    async def body(client: ControlClient) -> None:
        await client.command("display-message", "-p", "up")
        await client.command("kill-server")
        # No server: commands fail (never retried blindly), and no server of our own is
        # started for the anchor (a user who killed tmux gets no stray server back).
        for _ in range(20):  # however often it is asked
            with contextlib.suppress(TmuxError):
                await client.command("display-message", "-p", "none")
                raise AssertionError("a command ran: a server was started for the anchor")
            await asyncio.sleep(0.01)  # poll interval
        with pytest.raises(TmuxError, match="no server|error connecting"):
            await client.run_subprocess("list-sessions")
        # The user starts tmux again: within a deadline a command reconnects and succeeds.
        await client.run_subprocess("new-session", "-d", "-s", "back")
        deadline = asyncio.get_running_loop().time() + 5
        while True:
            try:
                reply = await client.command("display-message", "-p", "again")
                break
            except TmuxError:
                assert asyncio.get_running_loop().time() < deadline, "never reconnected"
                await asyncio.sleep(0.01)  # poll interval of a deadline wait
        assert reply == ["again"]
        assert client.reconnects == 1

    run(tmux_socket, body)


def test_a_batch_runs_its_commands_in_one_go_and_answers_each(tmux_socket: str) -> None:
    async def body(client: ControlClient) -> None:
        pane = f"{ANCHOR}:"
        ran, out = await client.batch(
            [("display-message", "-p", "one"), ("set-buffer", "-b", "zs-b", "x;y")]
            + [("display-message", "-p", "#{buffer_size}"), ("show-buffer", "-b", "zs-b")]
        )
        assert (ran, out) == (True, [["one"], [], ["3"], ["x;y"]])  # in order
        # A condition true in the server at that moment: the commands; false: the others.
        yes = "#{==:#{pane_in_mode},0}"
        no = "#{==:#{pane_in_mode},1}"
        other = [("display-message", "-p", "-t", pane, "mode #{pane_in_mode}")]
        assert await client.batch([("display-message", "-p", "in")], when=(pane, yes)) == (
            True,
            [["in"]],
        )
        assert await client.batch(
            [("display-message", "-p", "in")], when=(pane, no), otherwise=other
        ) == (False, [["mode 0"]])
        # The first failing command ends the batch and raises; the client stays in step.
        with pytest.raises(TmuxError, match="can't find pane"):
            await client.batch([("display-message", "-p", "a"), ("send-keys", "-t", "%999", "x")])
        with pytest.raises(TmuxError, match="can't find pane"):
            await client.batch([("send-keys", "-t", "%999", "x")], when=(pane, yes))
        replies = await asyncio.gather(
            *(client.batch([("display-message", "-p", f"r{i}")]) for i in range(50)),
            *(client.command("display-message", "-p", f"c{i}") for i in range(50)),
        )
        assert replies == [(True, [[f"r{i}"]]) for i in range(50)] + [[f"c{i}"] for i in range(50)]

    run(tmux_socket, body)
