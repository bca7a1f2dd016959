"""PaneWatch against a real, private tmux server: pane deaths that tmux announces to no
control client reach the snapshot through our hooks, and the user's hooks are left alone."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable

import pytest

from zmqswarm.agent.gateway import ANCHOR, TmuxError
from zmqswarm.agent.panes import HOOK_INDEX, HOOKS, PaneWatch


def tmux(socket: str, *args: str) -> str:
    done = subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def hooks(socket: str) -> str:
    return tmux(socket, "show-hooks", "-g") + "\n" + tmux(socket, "show-hooks", "-gw")


def attach_another_agent(socket: str) -> subprocess.Popen[bytes]:
    """What another agent process looks like to tmux: a control client on the anchor."""
    argv = ["tmux", "-L", socket, "-C", "attach-session", "-t", f"={ANCHOR}"]
    return subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)


async def within(seconds: float, condition: Callable[[], bool], what: str) -> float:
    """Wait (bounded) for ``condition``; return how long it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not condition():
        assert loop.time() - start < seconds, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.005)  # poll interval of a deadline wait
    return loop.time() - start


@pytest.mark.solo
def test_pane_deaths_tmux_does_not_announce_arrive_through_the_hooks(tmux_socket: str) -> None:
    # Panes in a session the watch is not attached to; the dying ones are never the active
    # pane, so no %window-pane-changed either: only the hooks can tell. (Not remain-on-exit:
    # tmux 3.3a fires pane-died only once it reaps the program, which it sometimes leaves a
    # zombie until the next SIGCHLD; the pane reads dead at once and the reconcile sees it.)
    base = tmux(tmux_socket, "new-session", "-d", "-s", "work", "-P", "-F", "#{pane_id}")
    split = ("split-window", "-d", "-t", base, "-P", "-F", "#{pane_id}", "cat")
    killed, exits = (tmux(tmux_socket, *split) for _ in range(2))
    tmux(tmux_socket, "set-hook", "-g", "pane-exited[0]", "set-buffer -b users-hook ran")

    async def main() -> None:
        watch = PaneWatch(tmux_socket, reconcile=60.0)  # the periodic snapshot never comes
        await watch.start()
        try:
            assert {killed, exits} <= set(watch.panes)
            assert f"pane-exited[{HOOK_INDEX}]" in hooks(tmux_socket)

            tmux(tmux_socket, "kill-pane", "-t", killed)
            took = [await within(3, lambda: killed not in watch.panes, "kill-pane seen")]
            tmux(tmux_socket, "send-keys", "-t", exits, "C-d")  # cat reads EOF and exits
            took.append(await within(3, lambda: exits not in watch.panes, "exit seen"))
            assert watch.rings >= 2
            assert max(took) < 1.0, took
        finally:
            await watch.close()

    asyncio.run(main())
    after = hooks(tmux_socket)
    assert "pane-exited[0] set-buffer -b users-hook ran" in after  # the user's: untouched
    assert tmux(tmux_socket, "show-buffer", "-b", "users-hook") == "ran"  # and it still ran
    assert f"[{HOOK_INDEX}]" not in after  # the last agent out took ours away


def test_hooks_stay_while_another_agent_is_attached(tmux_socket: str) -> None:
    tmux(tmux_socket, "new-session", "-d", "-s", "work")

    async def main() -> None:
        first = PaneWatch(tmux_socket)
        await first.start()
        other = attach_another_agent(tmux_socket)
        clients = ("list-clients", "-F", "#{client_pid}")
        await within(5, lambda: str(other.pid) in tmux(tmux_socket, *clients), "it attached")
        await first.close()
        assert all(f"{h}[{HOOK_INDEX}]" in hooks(tmux_socket) for h in HOOKS)

        other.communicate(timeout=5)  # closes its stdin: it detaches
        second = PaneWatch(tmux_socket)
        await second.start()
        await second.close()
        assert f"[{HOOK_INDEX}]" not in hooks(tmux_socket)

    asyncio.run(main())


def test_targets_resolve_as_the_user_s_shell_would_never_to_the_anchor(tmux_socket: str) -> None:
    c = tmux(tmux_socket, "new-session", "-d", "-s", "c", "-P", "-F", "#{pane_id}")
    tmux(tmux_socket, "new-session", "-d", "-s", "work", "-n", "main")
    window = ("new-window", "-d", "-t", "work", "-n", "editor", "-P", "-F", "#{pane_id}")
    editor = tmux(tmux_socket, *window)

    async def main() -> None:
        watch = PaneWatch(tmux_socket)
        await watch.start()  # the anchor session exists from here on
        try:
            assert await watch.resolve("c") == c  # not the anchor's window, whatever its name
            assert await watch.resolve("work:editor") == editor
            assert await watch.resolve(editor) == editor
            for bad in (f"={ANCHOR}:", "nosuch:1"):
                with pytest.raises(TmuxError):
                    await watch.resolve(bad)
        finally:
            await watch.close()

    asyncio.run(main())


def test_a_restarted_server_gets_the_hooks_again(tmux_socket: str) -> None:
    tmux(tmux_socket, "new-session", "-d", "-s", "work")

    async def main() -> None:
        watch = PaneWatch(tmux_socket, reconcile=60.0)
        await watch.start()
        try:
            old = int(tmux(tmux_socket, "display-message", "-p", "#{pid}"))
            tmux(tmux_socket, "kill-server")  # hooks live in the server: gone with it
            await within(10, lambda: not os.path.exists(f"/proc/{old}"), "the old server gone")
            base = tmux(tmux_socket, "new-session", "-d", "-s", "again", "-P", "-F", "#{pane_id}")
            split = ("split-window", "-d", "-t", base, "-P", "-F", "#{pane_id}", "cat")
            doomed = tmux(tmux_socket, *split)
            hooked = f"pane-exited[{HOOK_INDEX}]"
            await within(10, lambda: hooked in hooks(tmux_socket), "the hooks installed again")
            await within(10, lambda: doomed in watch.panes, "the new server's panes seen")
            tmux(tmux_socket, "kill-pane", "-t", doomed)
            took = await within(3, lambda: doomed not in watch.panes, "the kill seen")
            assert took < 1.0  # through the hooks: the reconcile is 60 s away
        finally:
            await watch.close()

    asyncio.run(main())
