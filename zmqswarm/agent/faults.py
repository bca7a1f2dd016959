"""Fault injection for tests, at named points of the agent's n-th message (counted from 1 in
each process):

- ``before_paste``: the intent is journaled, nothing pasted yet;
- ``before_enter``: pasted (and recorded in the pane), no Enter yet;
- ``after_paste``: the Enter went (historical name: after the paste and its Enter);
- ``before_ack``: submitted and verified, not acked yet.

``ZS_AGENT_CRASH=<point>:<n>`` SIGKILLs the agent there; ``ZS_AGENT_FAIL=<point>:<n>`` raises
a TmuxError there once; ``ZS_AGENT_TMUX=<point>:<n>:<command> [args...]`` runs a tmux
command aimed at the pane there (``-t <pane>`` goes after the command's name), e.g.
``kill-pane``, ``copy-mode`` or ``send-keys -l x``, once.
"""

from __future__ import annotations

import os
import signal

from zmqswarm.agent.gateway import ControlClient, TmuxError

__all__ = ["fault"]

_done: set[str] = set()


async def fault(name: str, count: int, tmux: ControlClient, pane: str) -> None:
    here = f"{name}:{count}"
    if os.environ.get("ZS_AGENT_CRASH") == here:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("ZS_AGENT_FAIL") == here and f"fail {here}" not in _done:
        _done.add(f"fail {here}")
        raise TmuxError("send-keys", f"injected failure at {here}")
    at, _, command = os.environ.get("ZS_AGENT_TMUX", "").partition(f"{here}:")
    if not at and command and f"tmux {here}" not in _done:
        _done.add(f"tmux {here}")
        name, *args = command.split()
        await tmux.command(name, "-t", pane, *args)
