"""Putting one message into a tmux pane: whole, bracketed, then submitted by its own Enter.

The steps (what agent-deck, ntm and CAO converged on; docs/agent.md): sanitize; frame the
body as the profile says; stage it into a uniquely named buffer; ``paste-buffer -p -r -d``
(bracketed if the program asked for it, LF kept, buffer deleted); give the program a moment
to take the paste; a separate ``send-keys Enter``.

The paste and the Enter each run in one batch with a check of the pane, evaluated by the
server at that instant (``if-shell -F``): alive, not in a mode, input on, and the cursor and
history where the last probe saw them, so nothing (a keystroke the program echoed, output,
copy mode) came between the look and the act. The same batch records the act in the pane's own
options (``@zs_pasted`` / ``@zs_entered``): a crash of the agent cannot split the act from its
record, and the record dies with the pane, like the text it describes.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid

from zmqswarm.agent.gateway import ControlClient, all_of
from zmqswarm.agent.panes import ENTERED, MARK, PASTED
from zmqswarm.agent.profiles import Profile
from zmqswarm.agent.screen import Mark, Probe

__all__ = [
    "flatten",
    "forget",
    "frame",
    "key_of",
    "paste",
    "paste_and_submit",
    "paste_checked",
    "press_enter",
    "press_enter_checked",
    "sanitize",
]

# C0 controls except TAB and LF, DEL, and C1 controls. ESC goes too: an embedded end-of-paste
# sequence (ESC[201~) would otherwise break out of the bracketed paste on tmux < 3.7.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def sanitize(text: str) -> str:
    """Normalize newlines to LF and drop control characters (keeping TAB and LF)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def frame(head: str, body: str, profile: Profile) -> str:
    """The text to paste: ``body`` (sanitized, one line unless the profile pastes several)
    under the envelope ``head`` in the profile's form."""
    if profile.envelope == "line":
        return f"{profile.envelope_prefix}{head}\n{body}"
    if profile.envelope == "prefix":
        return f"{profile.envelope_prefix}{head} » {body}"
    return body


def flatten(body: str, profile: Profile) -> str:
    """A body of several lines as one, for ``multiline = "join"``."""
    return profile.join_with.join(line for line in body.split("\n"))


def key_of(ticket: str) -> str:
    """The name of a message in pane options (and in formats: hex only)."""
    return hashlib.sha1(ticket.encode()).hexdigest()[:16]


async def paste_checked(tmux: ControlClient, probe: Probe, text: str, key: str, mark: Mark) -> bool:
    """Paste ``text`` into the probed pane if, in the server, it is still as probed and no
    paste of ours waits there for its Enter; record ``key`` and ``mark`` in the pane in the
    same batch. False: nothing was pasted."""
    pane = probe.pane
    buffer = f"zs-{uuid.uuid4().hex}"
    await tmux.command("set-buffer", "-b", buffer, "--", text)
    marks = [
        ("set-option", "-p", "-t", pane, o, v) for o, v in zip(MARK, mark.fields(), strict=True)
    ]
    ran, _ = await tmux.batch(
        [
            ("paste-buffer", "-p", "-r", "-d", "-b", buffer, "-t", pane),
            ("set-option", "-p", "-t", pane, PASTED, key),
            *marks,
        ],
        when=(pane, all_of(probe.unchanged(), f"#{{==:#{{{PASTED}}},#{{{ENTERED}}}}}")),
        otherwise=[("delete-buffer", "-b", buffer)],
    )
    return ran


async def press_enter_checked(tmux: ControlClient, probe: Probe, key: str) -> bool:
    """Press Enter in the probed pane if it is still as probed and holds our paste ``key``;
    record it in the same batch. False: no Enter was pressed."""
    pane = probe.pane
    ran, _ = await tmux.batch(
        [("send-keys", "-t", pane, "Enter"), ("set-option", "-p", "-t", pane, ENTERED, key)],
        when=(pane, all_of(probe.unchanged(), f"#{{==:#{{{PASTED}}},{key}}}")),
    )
    return ran


async def forget(tmux: ControlClient, pane: str) -> None:
    """Our last paste in ``pane`` is no longer ours to finish (it was cleared, or we gave it
    up): the pane takes the next one."""
    await tmux.batch(
        [
            ("set-option", "-p", "-t", pane, PASTED, ""),
            ("set-option", "-p", "-t", pane, ENTERED, ""),
        ]
    )


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
    """Paste ``text`` (sanitized) into ``pane`` and press Enter once, unchecked. Returns
    what was pasted.

    ``settle``: seconds between the paste and the Enter, so that a program reading the paste
    in chunks sees the Enter after it, not inside it."""
    body = sanitize(text)
    await paste(tmux, pane, body)
    await asyncio.sleep(settle)
    await press_enter(tmux, pane)
    return body
