"""``zs agent``: a peer that delivers each message it receives into one tmux pane.

One pane, one writer, messages in order, each pasted whole with an envelope line and
submitted by its own Enter, and acked to the router only after the Enter went out.

Exactly once across agent crashes: an intent is journaled (fsynced) before each paste. A
message that comes again (attempt > 1) with an unresolved intent was maybe pasted: the agent
looks for its ticket, which the envelope carries, in the pane's history, and acks without
pasting if it is there. This needs the pane's program to show what it was given (agents
echo their input; a program that shows nothing cannot be checked and gets the paste again).

Readiness comes from a profile (zmqswarm.profiles, configs/profiles/*.toml): the screen quiet
for a while, and, where the profile knows the prompt, the cursor line at an empty prompt. A
human's draft after the prompt defers the delivery; it is never overwritten.
Agents with lifecycle hooks call ``zs hook idle|busy`` (pane option ``@zs_state``), which
beats scraping: busy waits, idle needs no quiet period (a draft still defers).
Not yet here (issue 3): a paste whose Enter did not go out, serving many tagged panes
from one process, and outcomes reported with the ack.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from zmqswarm.aio import AsyncClient
from zmqswarm.delivery import paste_and_submit
from zmqswarm.journal import Journal
from zmqswarm.profiles import Profile
from zmqswarm.tickets import Message
from zmqswarm.tmux import ControlClient, TmuxError

__all__ = ["envelope", "run_agent"]

log = logging.getLogger("zmqswarm.agent")


def envelope(msg: Message) -> str:
    """The line pasted before a body: who sent it, its ticket, and how to answer."""
    return f"[zs] from {msg.sender} · ticket {msg.ticket} · reply: zs send {msg.sender} '...'"


TAG = "@zs_agent"  # pane user option naming the agent a pane belongs to
STATE = "@zs_state"  # pane user option set by the agent's own hooks: idle | busy


async def tagged_pane(tmux: ControlClient, name: str) -> str | None:
    """The live pane tagged ``@zs_agent=<name>``, from one batched list-panes."""
    lines = await tmux.command("list-panes", "-a", "-F", f"#{{pane_id}} #{{pane_dead}} #{{{TAG}}}")
    for line in lines:
        pane, dead, tag = (line.split(" ", 2) + ["", ""])[:3]
        if tag == name and dead == "0":
            return pane
    return None


async def pane_alive(tmux: ControlClient, pane: str) -> bool:
    try:
        lines = await tmux.command("display-message", "-p", "-t", pane, "#{pane_id} #{pane_dead}")
    except TmuxError:
        return False
    return bool(lines) and lines[0] == f"{pane} 0"  # an empty reply: no such pane


async def pane_shows(tmux: ControlClient, pane: str, marker: str) -> bool:
    """Whether ``marker`` appears anywhere in the pane's history (lines joined)."""
    lines = await tmux.command("capture-pane", "-p", "-J", "-S", "-", "-t", pane)
    return any(marker in line for line in lines)


def crash_point(name: str, count: int) -> None:
    """Fault injection for tests: ``ZS_AGENT_CRASH=<point>:<n>`` SIGKILLs the agent at that
    point while handling its n-th message (points: before_paste, after_paste)."""
    spec = os.environ.get("ZS_AGENT_CRASH")
    if spec and spec == f"{name}:{count}":
        os.kill(os.getpid(), signal.SIGKILL)


async def wait_until_ready(
    tmux: ControlClient, pane: str, profile: Profile, stop: asyncio.Event, poll: float = 0.04
) -> bool:
    """Wait until the pane's screen has not changed for ``profile.quiet`` seconds and its
    cursor line reads as ready (a prompt with no draft, if the profile knows the prompt).
    A human's draft is never touched: the delivery waits until it is gone. False if
    ``stop`` was set meanwhile."""
    last: list[str] | None = None
    since = 0.0
    told = ""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        info = await tmux.command(
            "display-message", "-p", "-t", pane, f"#{{cursor_y}} #{{{STATE}}}"
        )
        cursor, _, hooked = (info[0] if info else "").partition(" ")
        screen = await tmux.command("capture-pane", "-p", "-t", pane)
        now = loop.time()
        if screen != last:
            last, since = screen, now
        # The agent's own hook beats scraping: busy waits, idle needs no quiet period.
        quiet_enough = hooked == "idle" or now - since >= profile.quiet
        if hooked != "busy" and quiet_enough:
            y = int(cursor) if cursor.isdigit() else len(screen) - 1
            state = profile.read(screen[y] if 0 <= y < len(screen) else "")
            if state.ready:
                return True
            if state.draft and state.draft != told:
                log.warning("a draft is typed in %s (%r): deferring", pane, state.draft[:40])
                told = state.draft
        try:
            await asyncio.wait_for(stop.wait(), poll)
        except TimeoutError:
            pass
    return False


async def wait_for_pane(
    tmux: ControlClient, name: str, pane: str | None, stop: asyncio.Event
) -> str | None:
    """The pane to deliver into now, waiting while there is none; None once ``stop`` is set."""
    warned = False
    while not stop.is_set():
        target = await tagged_pane(tmux, name) if pane is None else pane
        if target is not None and await pane_alive(tmux, target):
            return target
        if not warned:
            log.warning("no live pane for %s (%s): holding its messages", name, pane or TAG)
            warned = True
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass
    return None


def default_journal(name: str) -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "zmqswarm", f"agent-{name}.journal")


async def run_agent(
    name: str,
    pane: str | None,
    *,
    router: str | None = None,
    socket_name: str | None = None,
    socket_path: str | None = None,
    journal: str | None = None,
    profile: Profile | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``pane`` as peer ``name`` until ``stop`` is set. With ``pane`` None, serve the
    live pane tagged ``@zs_agent=<name>``, looked up again for every message: when that pane
    dies, messages wait (unacked, so the router keeps them) until a new pane takes the tag."""
    stop = stop or asyncio.Event()
    profile = profile or Profile()
    tmux = ControlClient(socket_name, socket_path=socket_path)
    intents = Journal(journal or default_journal(name))
    handled = 0
    async with AsyncClient(name, router=router, auto_ack=False) as client:
        try:
            while not stop.is_set():
                try:
                    msg = await client.recv(timeout=0.5)
                except TimeoutError:
                    continue
                target = await wait_for_pane(tmux, name, pane, stop)
                if target is None or not await wait_until_ready(tmux, target, profile, stop):
                    return  # stopping: the message stays unacked, so at the router
                handled += 1
                ticket = str(msg.ticket)
                if ticket in intents.open and await pane_shows(tmux, target, f"ticket {ticket} "):
                    log.warning("%s was pasted before a crash: not pasting it again", ticket)
                else:
                    intents.intend(ticket)
                    crash_point("before_paste", handled)
                    head = profile.envelope_prefix + envelope(msg)
                    await paste_and_submit(tmux, target, f"{head}\n{msg.text}")
                    crash_point("after_paste", handled)
                msg.ack()
                intents.done(ticket)
        finally:
            intents.close()
            await tmux.close()
