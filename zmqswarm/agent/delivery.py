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
from zmqswarm.agent.paste import forget, frame, key_of, paste_checked, press_enter_checked
from zmqswarm.agent.screen import GONE, MIXED, OURS, Mark, Probe, holds, left_of, squeeze
from zmqswarm.client.tickets import Message

if TYPE_CHECKING:
    from zmqswarm.agent.writer import PaneWriter

__all__ = ["Delivery", "envelope"]

log = logging.getLogger("zmqswarm.agent")

RENDER = 1.0  # seconds a program that shows what is typed gets to show our paste
# Seconds our text must stay out of the input line before that counts: a line editor
# repainting a line (after a keystroke, say) shows it half drawn for a moment.
STEADY = 0.25
AFTER_ENTER = (0.05, 0.3, 0.8)  # when to look whether an Enter took; an Enter again if not
MAX_ENTERS = 3


def envelope(msg: Message) -> str:
    """The line pasted before a body: who sent it, its ticket, and how to answer."""
    return f"[zs] from {msg.sender} · ticket {msg.ticket} · reply: zs send {msg.sender} '...'"


class Delivery:
    def __init__(self, writer: PaneWriter, msg: Message) -> None:
        self.writer = writer
        self.agent = writer.agent
        self.watch = writer.agent.watch
        self.tmux = writer.agent.write
        self.msg = msg
        self.ticket = str(msg.ticket)
        self.key = key_of(self.ticket)
        loop = asyncio.get_running_loop()
        self.clock = loop.time
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
        self.times: dict[str, float] = {}

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

    # -- from the paste to the submission ---------------------------------------------------

    async def finish(self, pane: str) -> Outcome | None:
        """Carry our paste in ``pane`` to a submission: its Enter, then verify. None: the
        text is in no live pane any more (the pane died, or the input line was cleared)."""
        await asyncio.sleep(self.profile.settle)  # the program takes the paste first
        enters = await self.enter(pane)
        if enters is None or isinstance(enters, Outcome):
            return enters
        self.times.setdefault("entered", self.clock())
        await fault("after_paste", self.count, self.tmux, pane)
        outcome = await self.verify(pane, enters)
        await fault("before_ack", self.count, self.tmux, pane)
        return outcome

    async def enter(self, pane: str) -> int | Outcome | None:
        """Press the Enter for our paste when the pane is as expected. Returns the Enters
        pressed (0: one was pressed before, by an agent before this one), an Outcome if the
        wait ended or someone else submitted it, None if the text is in no live pane."""
        profile, shown, render_by = self.profile, False, self.clock() + RENDER
        gone_since = 0.0
        while True:
            if why := self.holds.over():
                return await self._give_up(pane, why)
            probe = await self._look(pane)
            if probe is None or probe.pasted != self.key:
                return None  # the pane died, or our paste there was given up: in no pane
            if probe.entered == self.key:
                return 0
            if probe.blocked:
                self.holds.say("deferred", "copy mode or input off: pasted, its Enter waits")
                await asyncio.sleep(0.05)
                continue
            state = holds(probe, self.mark) if profile.echo else OURS
            if state == GONE and not shown and self.clock() < render_by:
                await asyncio.sleep(0.005)  # not drawn yet
                continue
            if state == GONE and shown:
                gone_since = gone_since or self.clock()
                if self.clock() - gone_since < STEADY:
                    await asyncio.sleep(0.02)
                    continue
                return await self._left_the_line(pane)
            gone_since = 0.0
            shown = shown or state != GONE  # mixed with a keystroke is shown too
            if state == GONE:
                log.warning(
                    "%s: %s does not show our paste (profile: echo)", self.writer.name, pane
                )
            if state == MIXED:
                self.holds.say(
                    "typed_not_submitted",
                    "a keystroke landed next to it in the input line: not submitted;"
                    " it is pasted again if the line is cleared",
                )
                await asyncio.sleep(0.1)
                continue
            if await press_enter_checked(self.tmux, probe, self.key):
                self.watch.touched(pane)
                self.holds.ready()
                return 1
            await asyncio.sleep(0.01)  # the pane changed since the look: look again

    async def verify(self, pane: str, enters: int) -> Outcome:
        """Did the Enter take? Where the program shows our text still in its input line, an
        Enter again (at most MAX_ENTERS in all). Then, while it still shows, the message is
        held (typed_not_submitted), never reported delivered, until the text leaves the
        line or the wait's bound passes."""
        for delay in AFTER_ENTER:
            await asyncio.sleep(delay)
            probe = await self._look(pane)
            if probe is None or not await self._still_typed_steadily(pane, probe):
                return Outcome("submitted", enters=enters, held=self.holds.held)
            if enters < MAX_ENTERS and not probe.blocked:
                if await press_enter_checked(self.tmux, probe, self.key):
                    enters += 1
                    self.watch.touched(pane)
        while True:
            if why := self.holds.over():
                return await self._give_up(pane, why)
            probe = await self._look(pane)
            if probe is None or not await self._still_typed_steadily(pane, probe):
                return Outcome("submitted", enters=enters, held=self.holds.held)
            self.holds.say("typed_not_submitted", f"{enters} Enters did not submit its text")
            await asyncio.sleep(0.25)

    # -- helpers ----------------------------------------------------------------------------

    async def _still_typed_steadily(self, pane: str, probe: Probe) -> bool:
        """Our text still in the input line, or gone from it in three looks over 60 ms (not
        only for a repaint)."""
        until = self.clock() + 0.06
        while not self._still_typed(probe):
            if self.clock() >= until:
                return False
            await asyncio.sleep(0.03)
            again = await self._look(pane)
            if again is None:
                return False
            probe = again
        return True

    def _still_typed(self, probe: Probe) -> bool:
        if self.profile.echo:
            return holds(probe, self.mark) != GONE
        if self.profile.prompt is None:
            return False  # no input line to read: the Enter went, that is all
        screen = probe.screen
        draft = self.profile.read_screen(screen, probe.y).draft
        return still_typed(draft, self.text.splitlines()[-1].strip() if self.text.strip() else "")

    async def _look(self, pane: str) -> Probe | None:
        try:
            probe, styled, _ = await self.watch.probe(
                pane, history=self._rows(), styled=self.profile.ignore_dim
            )
        except TmuxError:
            return None
        if probe.dead:
            return None
        if styled and not self.profile.echo:
            probe = _with_rows(probe, styled)
        return probe

    def _rows(self) -> int:
        """Rows of history a look needs to see our whole paste."""
        return min(2000, self.text.count("\n") + len(self.text) // 40 + 2)

    async def _left_the_line(self, pane: str) -> Outcome | None:
        """Our text was in the input line and is gone without our Enter: someone submitted
        it (its envelope is in the pane's history) or cleared it (it is nowhere)."""
        if self.ticket and self.profile.envelope != "none":
            marker = f"ticket {self.ticket}"
        else:
            marker = self.mark.first
        if await self.watch.history_shows(pane, marker):
            with contextlib.suppress(TmuxError):
                await self.tmux.command("set-option", "-p", "-t", pane, "@zs_entered", self.key)
            return Outcome("submitted", enters=0, detail="it left the input line without our Enter")
        with contextlib.suppress(TmuxError):
            await forget(self.tmux, pane)
        return None

    async def _give_up(self, pane: str, why: str) -> Outcome:
        """The bound passed with our text pasted: it is left to the human, as their draft."""
        with contextlib.suppress(TmuxError):
            await forget(self.tmux, pane)
        detail = f"{why}; its text was left in the input line"
        return Outcome("stalled", enters=0, detail=detail, held=self.holds.held)

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


def _with_rows(probe: Probe, rows: list[str]) -> Probe:
    """The probe with the screen read from a styled capture (no history rows)."""
    from dataclasses import replace

    return replace(probe, rows=rows, row=probe.y)


def still_typed(draft: str, tail: str) -> bool:
    """Whether the input line's ``draft`` is the end of our text (last line ``tail``)."""
    if not draft or not tail:
        return False
    probe = draft[-24:]
    return probe in tail or tail[-24:] in draft
