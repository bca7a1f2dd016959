"""Putting one message into a tmux pane: whole, bracketed, then submitted by its own Enter.

The steps (research/tmux-delivery.md §0 and §5): sanitize; stage the body into a uniquely
named buffer; ``paste-buffer -p -r -d`` (bracketed if the program asked for it, LF kept,
buffer deleted); give the program a moment to take the paste; a separate ``send-keys Enter``.
Readiness, drafts, verification and the crash journal are the agent's job, on top of this.
"""

from __future__ import annotations

import asyncio
import re
import uuid

from zmqswarm.agent.gateway import ControlClient

__all__ = ["paste", "paste_and_submit", "press_enter", "sanitize"]

# C0 controls except TAB and LF, DEL, and C1 controls. ESC goes too: an embedded end-of-paste
# sequence (ESC[201~) would otherwise break out of the bracketed paste on tmux < 3.7.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def sanitize(text: str) -> str:
    """Normalize newlines to LF and drop control characters (keeping TAB and LF)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


async def paste(tmux: ControlClient, pane: str, body: str) -> None:
    """Stage ``body`` (already sanitized) in a uniquely named buffer and paste it in one
    server command: bracketed if the program asked for it, LF kept, the buffer deleted."""
    buffer = f"zs-{uuid.uuid4().hex}"
    await tmux.command("set-buffer", "-b", buffer, "--", body)
    await tmux.command("paste-buffer", "-p", "-r", "-d", "-b", buffer, "-t", pane)


async def press_enter(tmux: ControlClient, pane: str) -> None:
    await tmux.command("send-keys", "-t", pane, "Enter")  # the key name: Codex tells C-m apart


async def paste_and_submit(
    tmux: ControlClient, pane: str, text: str, *, settle: float = 0.05
) -> str:
    """Paste ``text`` (sanitized) into ``pane`` and press Enter once. Returns what was pasted.

    ``settle``: seconds between the paste and the Enter, so that a program reading the paste
    in chunks sees the Enter after it, not inside it."""
    body = sanitize(text)
    await paste(tmux, pane, body)
    await asyncio.sleep(settle)
    await press_enter(tmux, pane)
    return body
