"""One message into its writer's pane: wait until the pane can take it, paste, carry it through
the window between the paste and the Enter, verify; or, for a message an agent before this one
had begun, find out from the pane how far it got and finish from there.

What the pane records (``@zs_pasted`` / ``@zs_entered``, set in the same tmux batch as the
paste / the Enter) and what it shows decide every step; the table in docs/agent.md
("Crashes") lists each state and what is done in it. The rules:

- a message is pasted only into a pane where no paste of ours waits for its Enter, and only
  if the pane is, in the server at that instant, as the readiness check saw it;
- its Enter is pressed only if the pane is still as the last look saw it (no copy mode, no
  keystroke, alive) and, where the program shows what is typed, the input line holds our
  text and nothing else;
- text of ours is never a draft: a paste of ours found waiting for its Enter is finished;
- a paste in a pane that died, or that someone cleared from the input line, is in no pane:
  the message is pasted again (into the pane that now has the name), never acked before;
- every wait ends: after the profile's ``max-hold`` the message is given up as a dead letter
  with the reason it waited (``Outcome("stalled")``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from zmqswarm.agent.faults import fault
from zmqswarm.agent.gateway import TmuxError
from zmqswarm.agent.outcome import Holds, Outcome
from zmqswarm.agent.paste import forget, frame, key_of, paste_checked
from zmqswarm.agent.screen import Mark, Probe, left_of, squeeze
from zmqswarm.agent.window import Window
from zmqswarm.client.tickets import Message

if TYPE_CHECKING:
    from zmqswarm.agent.writer import PaneWriter

__all__ = ["Delivery", "envelope"]

log = logging.getLogger("zmqswarm.agent")


def envelope(msg: Message) -> str:
    """The line pasted before a body: who sent it, its ticket, and how to answer."""
    return f"[zs] from {msg.sender} · ticket {msg.ticket} · reply: zs send {msg.sender} '...'"


class Delivery(Window):
    """One message, from its receipt to its outcome (the window after the paste: Window)."""

    def __init__(self, writer: PaneWriter, msg: Message) -> None:
        self.writer = writer
        self.agent = writer.agent
        self.watch = writer.agent.watch
        self.tmux = writer.agent.write
        self.msg = msg
        self.ticket = str(msg.ticket)
        self.key = key_of(self.ticket)
        self.t0 = self.clock()
        self.profile = writer.profile
        self.holds = Holds(
            self._tell,
            self.clock,
            bound=self.profile.max_hold,
            every=writer.hold_every(),
            on_new=self._logged,
        )
        self.text = ""
        self.mark = Mark("", "", "")
        self.count = 0  # this message's number in this process, for fault points
        self.times = {}

    # -- the whole of it ------------------------------------------------------------------

    async def run(self) -> Outcome:
        if self.agent.journal.was_done(self.ticket):
            return Outcome("duplicate", enters=0)  # the router gave it again: never twice
        journaled = self.agent.journal.open.get(self.ticket)
        if journaled is not None:
            outcome = await self.resolve(journaled)
            if outcome is not None:
                return self._timed(outcome)
        while True:
            probe = await self.ready()
            if isinstance(probe, Outcome):
                return self._timed(probe)
            self.times.setdefault("ready", self.clock())
            self._frame(probe)
            if not self.count:
                self.agent.handled += 1
                self.count = self.agent.handled
            self.agent.journal.intend(self.ticket, probe.pane)
            await fault("before_paste", self.count, self.tmux, probe.pane)
            if not await paste_checked(self.tmux, probe, self.text, self.key, self.mark):
                continue  # the pane changed since the look: look again
            self.watch.touched(probe.pane)
            self.times["pasted"] = self.clock()
            await fault("before_enter", self.count, self.tmux, probe.pane)
            outcome = await self.finish(probe.pane)
            if outcome is not None:
                return self._timed(outcome)
            log.warning("%s: %s is in no pane now: pasting it again", self.writer.name, self.ticket)

    async def resolve(self, pane: str) -> Outcome | None:
        """An agent before this one journaled this message for ``pane``: how far did it get?
        None: its text is in no live pane (never pasted there, the pane died, or the text
        was cleared): deliver it as new."""
        target = pane or (t.id if (t := self.writer.target()) else "")
        probe = None
        if target:
            with contextlib.suppress(TmuxError):
                probe, _, _ = await self.watch.probe(target)
        if probe is None or probe.dead or probe.pasted != self.key:
            log.warning("%s: %s was never pasted into a live pane", self.writer.name, self.ticket)
            return None
        self.profile = self.writer.use_profile(target)
        self.mark = probe.mark or self.mark
        self._frame(probe, keep_mark=True)
        log.warning("%s: %s was pasted before a crash: finishing it", self.writer.name, self.ticket)
        outcome = await self.finish(target)
        if outcome is not None and outcome.status == "submitted":
            outcome.status = "recovered"
        return outcome

    # -- until the pane can take it ---------------------------------------------------------

    async def ready(self) -> Probe | Outcome:
        """A look at a live pane that can take the message now; or how it ended first."""
        writer, watch = self.writer, self.watch
        while True:
            if self.msg.expires and self.clock() >= self.msg.expires:
                waited = (self.clock() - self.t0) * 1000
                return Outcome("expired", wait_ms=waited, held=self.holds.held)
            if why := self.holds.over():
                return Outcome("stalled", enters=0, detail=why, held=self.holds.held)
            pane = writer.target()
            if pane is None:
                self.holds.say("dead", f"no live pane for {writer.name}; held at the router")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.changed().wait(), 1.0)
                continue
            watch.served.add(pane.id)  # until the next sampling round, if it is a new one
            self.profile = profile = writer.use_profile(pane.id)
            self.holds.bound = profile.max_hold
            try:
                probe, styled, since = await watch.probe(pane.id, styled=profile.ignore_dim)
            except TmuxError:
                await watch.refresh()  # the pane went away meanwhile
                continue
            if probe.pasted != probe.entered:  # a paste of ours waits for its Enter there
                if probe.pasted != self.key:
                    await self.finish_other(probe)
                    continue
                self.mark = probe.mark or self.mark  # ours, its intent lost: finish it
                self._frame(probe, keep_mark=True)
                outcome = await self.finish(pane.id)
                if outcome is not None:
                    outcome.status = (
                        "recovered" if outcome.status == "submitted" else outcome.status
                    )
                    return outcome
                continue
            why = writer.not_ready(probe, styled or probe.screen, self.clock() - since)
            if not why:
                self.holds.ready()
                return probe
            if why == "quiet" and self.holds.waited() >= self.holds.every:
                why = "its output has not settled"  # e.g. a retry countdown: say so
            if why != "quiet":
                self.holds.say("refused_draft" if why.startswith("a draft") else "deferred", why)
            await asyncio.sleep(0.04)

    async def finish_other(self, probe: Probe) -> None:
        """Another message's paste waits in the pane for its Enter (its agent died): it is
        our text, so it is finished, not taken for a draft. Its own delivery, when it comes
        again, finds it entered."""
        log.warning(
            "%s: a paste of ours waits in %s for its Enter: finishing it",
            self.writer.name,
            probe.pane,
        )
        other = Delivery(self.writer, self.msg)
        other.ticket, other.key, other.holds = "", probe.pasted, self.holds
        other.mark = probe.mark or other.mark
        other.profile = self.profile
        if await other.finish(probe.pane) is None:
            with contextlib.suppress(TmuxError):
                await forget(self.tmux, probe.pane)  # gone: not ours to finish any more

    def _frame(self, probe: Probe, *, keep_mark: bool = False) -> None:
        head = envelope(self.msg)
        self.text = frame(head, self.writer.body(self.msg, self.profile), self.profile)
        if not keep_mark:
            before = left_of(probe.cursor_line, probe.x)  # ready: no draft there
            self.mark = Mark.of(before, self.text)
            self.writer.baselines[probe.pane] = squeeze(before)

    def _timed(self, outcome: Outcome) -> Outcome:
        self.holds.ready()  # the last wait counts too
        if outcome.status in ("submitted", "recovered", "typed_not_submitted"):
            t = self.times
            ready = t.get("ready", self.t0)
            pasted = t.get("pasted", ready)
            entered = t.get("entered", pasted)
            outcome.wait_ms = (ready - self.t0) * 1000
            outcome.paste_ms = (pasted - ready) * 1000
            outcome.submit_ms = (entered - pasted) * 1000
            outcome.verify_ms = (self.clock() - entered) * 1000
        outcome.held = self.holds.held
        return outcome

    def _tell(self, text: str) -> None:
        self.msg.hold(text)
        self.writer.report(text)

    def _logged(self, outcome: str, why: str) -> None:
        stats = self.agent.stats
        if outcome == "dead":
            stats.dead += 1
        else:
            stats.deferred += 1
        log.warning("%s: %s %s: %s", self.writer.name, outcome, self.ticket, why)
