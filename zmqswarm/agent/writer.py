"""One agent name: its client, its FIFO, and the one coroutine that writes to its pane.

``PaneWriter`` takes the messages for its name in order, one at a time, hands each to a
``Delivery`` (zmqswarm.agent.delivery), and acks it to the router with the outcome as the
note once the delivery is over, and only then. It also knows how to read its pane for
readiness (``not_ready``), including, for a program whose prompt no profile describes, what
its input line looked like when last known empty (the "baseline" a draft extends).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from typing import TYPE_CHECKING

from zmqswarm.agent.delivery import Delivery
from zmqswarm.agent.gateway import TmuxError
from zmqswarm.agent.outcome import Outcome
from zmqswarm.agent.panes import Pane
from zmqswarm.agent.paste import flatten, sanitize
from zmqswarm.agent.profiles import Profile
from zmqswarm.agent.screen import Probe, left_of, plain_draft, squeeze
from zmqswarm.client.aio import AsyncClient
from zmqswarm.client.tickets import Message
from zmqswarm.private import open_private, private_dir
from zmqswarm.protocol import ClientOptions

if TYPE_CHECKING:
    from zmqswarm.agent.service import Agent

__all__ = ["PaneWriter"]

log = logging.getLogger("zmqswarm.agent")

# One delivery in flight per name: the writer takes one message at a time anyway. The rest
# wait at the router, queued behind it, where they survive this process; and an agent that
# dies again and again costs a delivery attempt (the router buries a message after 10) only
# to the message it was delivering, not to every message it had taken in.
AGENT_OPTIONS = ClientOptions(recv_window=1)

HOLD_EVERY = 2.0  # seconds between Holds of a waiting message, at most


class PaneWriter:
    def __init__(self, agent: Agent, name: str, pane: str | None) -> None:
        self.agent = agent
        self.name = name
        self.fixed = pane
        self.profile = agent.profile  # of the pane being served: set for each message
        self.client = AsyncClient(
            name, router=agent.router, auto_ack=False, options=AGENT_OPTIONS, curve=agent.curve
        )
        self.client.start()
        self.state = ""  # last reported to the router (zs peers)
        self.delivering = False
        # Per pane, for profiles without a prompt: the squeezed text left of the cursor when
        # the input line was last known empty: at first sight, then just before each paste.
        self.baselines: dict[str, str] = {}
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"zs-agent-{name}")

    async def _run(self) -> None:
        follow = asyncio.get_running_loop().create_task(self._follow_pane())
        try:
            while True:
                self.report(self.pane_state())
                try:
                    msg = await self.client.recv(timeout=1.0)
                except TimeoutError:
                    continue
                await self._handle(msg)
        finally:
            follow.cancel()

    async def _follow_pane(self) -> None:
        """Between messages, tell the router at once when the pane dies or comes back (the
        doorbell makes a pane death a new snapshot within milliseconds)."""
        while True:
            await self.agent.watch.changed().wait()
            if not self.delivering:
                self.report(self.pane_state())

    def pane_state(self) -> str:
        pane = self.target()
        if pane is not None:
            return f"live {pane.id}"
        return f"dead: {f'pane {self.fixed} is gone' if self.fixed else 'no live pane'}"

    def report(self, state: str) -> None:
        """What ``zs peers`` shows for this name (sent to the router when it changes)."""
        if state != self.state:
            self.state = state
            self.client.set_state(state)

    def hold_every(self) -> float:
        """Holds keep the router from delivering waiting mail again: well within its wait
        (which may be unbounded: then every HOLD_EVERY anyway, for the sender's sake)."""
        after = self.client.redeliver_after
        return HOLD_EVERY if math.isinf(after) else min(HOLD_EVERY, after / 2)

    async def _handle(self, msg: Message) -> None:
        self.delivering = True
        try:
            outcome = await self.deliver_until_done(msg)
        finally:
            self.delivering = False
        msg.ack(outcome.note())
        self.agent.journal.done(str(msg.ticket))
        stats = self.agent.stats
        stats.delivered += 1
        stats.outcomes[outcome.status] = stats.outcomes.get(outcome.status, 0) + 1
        if outcome.status != "submitted":
            log.warning("%s: %s %s", self.name, msg.ticket, outcome.note())

    async def deliver_until_done(self, msg: Message) -> Outcome:
        """A delivery, again after a failure (tmux went away, a bug): the same message, so
        order holds; what the pane records keeps a paste that went out from going out twice."""
        backoff = 0.2
        while True:
            try:
                return await Delivery(self, msg).run()
            except TmuxError as exc:
                log.warning("%s: %s: %s; trying again", self.name, msg.ticket, exc)
            except Exception:
                log.exception("%s: delivering %s failed; trying again", self.name, msg.ticket)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    # -- where and what -----------------------------------------------------------------------

    def target(self) -> Pane | None:
        watch = self.agent.watch
        if self.fixed is None:
            return watch.tagged(self.name)
        pane = watch.panes.get(self.fixed)
        return pane if pane is not None and not pane.dead else None

    def use_profile(self, pane: str) -> Profile:
        info = self.agent.watch.panes.get(pane)
        self.profile = self.agent.profile_for(info) if info is not None else self.agent.profile
        return self.profile

    def body(self, msg: Message, profile: Profile) -> str:
        """The body to paste, in the profile's form: sanitized, one line unless the profile
        pastes several, or a pointer to a file (large, or several lines it cannot take)."""
        text = sanitize(msg.text).rstrip("\n")
        if profile.expand_tabs:
            text = text.replace("\t", " " * profile.expand_tabs)
        several = "\n" in text
        if several and profile.multiline == "join":
            text = flatten(text, profile)
        if len(text) <= self.agent.max_paste and not (several and profile.multiline == "file"):
            return text
        private_dir(self.agent.spool)  # the bodies are the messages: ours alone, 0700 and 0600
        path = os.path.join(self.agent.spool, f"{str(msg.ticket).replace('/', '-')}.txt")
        with os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as f:
            f.write(msg.text)
        return f"the message is {len(msg.payload)} bytes: read {path}"

    # -- when ---------------------------------------------------------------------------------

    def not_ready(self, probe: Probe, screen: list[str], quiet: float) -> str:
        """Why the pane cannot take a message now ("" if it can; "quiet": not yet quiet)."""
        profile = self.profile
        if probe.blocked:
            return "copy mode or input off"
        if probe.hook == "busy":
            return "busy (its hook said so)"
        if profile.shows_busy(screen):  # before quiet: a busy screen rarely is
            return "busy (its screen says so)"
        if probe.hook != "idle" and quiet < profile.quiet:
            return "quiet"
        if profile.prompt is None:
            baseline = self.baselines.setdefault(
                probe.pane, squeeze(left_of(probe.cursor_line, probe.x))
            )
            draft = plain_draft(baseline, probe)
            return f"a draft is typed: {draft[:40]!r}" if draft else ""
        state = profile.read_screen(screen, probe.y)
        if state.draft:
            return f"a draft is typed: {state.draft[:40]!r}"
        if state.ready:
            return ""
        if profile.prompt_anywhere:
            return "not at its prompt: no line on screen matches the profile's prompt"
        return f"not at its prompt: the cursor line reads {probe.cursor_line.strip()[:40]!r}"
