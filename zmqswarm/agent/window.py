"""The window between a paste and its submission, for ``Delivery``: the Enter, pressed only
when the pane is as last seen and (where the program shows what is typed) holds our paste
alone; then the check that it took. What is found on the way (copy mode, a keystroke, the
text gone, the pane dead) decides what happens: see the table in docs/agent.md, "Crashes".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from zmqswarm.agent.faults import fault
from zmqswarm.agent.gateway import ControlClient, TmuxError
from zmqswarm.agent.outcome import Holds, Outcome
from zmqswarm.agent.panes import PaneWatch
from zmqswarm.agent.paste import forget, press_enter_checked
from zmqswarm.agent.profiles import Profile
from zmqswarm.agent.screen import GONE, MIXED, OURS, Mark, Probe, holds

if TYPE_CHECKING:
    from zmqswarm.agent.writer import PaneWriter

__all__ = ["Window", "still_typed"]

log = logging.getLogger("zmqswarm.agent")

RENDER = 1.0  # seconds a program that shows what is typed gets to show our paste
# Seconds our text must stay out of the input line before that counts: a line editor
# repainting a line (after a keystroke, say) shows it half drawn for a moment.
STEADY = 0.25
AFTER_ENTER = (0.05, 0.3, 0.8)  # when to look whether an Enter took; an Enter again if not
MAX_ENTERS = 3


class Window:
    """The part of one delivery from its paste on (a base of ``Delivery``)."""

    writer: PaneWriter
    watch: PaneWatch
    tmux: ControlClient
    profile: Profile
    holds: Holds
    ticket: str  # "" for another message's paste found waiting (its ticket is unknown)
    key: str
    mark: Mark
    text: str
    count: int
    times: dict[str, float]

    def clock(self) -> float:
        return asyncio.get_running_loop().time()

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
        gone_since, refused = 0.0, 0
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
            refused += 1
            if refused >= 10:  # e.g. a clock redrawn under the cursor: say so, keep trying
                self.holds.say("deferred", "the pane keeps changing: pasted, its Enter waits")
            await asyncio.sleep(0.01 * min(refused, 10))  # changed since the look: look again

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


def _with_rows(probe: Probe, rows: list[str]) -> Probe:
    """The probe with the screen read from a styled capture (no history rows)."""
    return replace(probe, rows=rows, row=probe.y)


def still_typed(draft: str, tail: str) -> bool:
    """Whether the input line's ``draft`` is the end of our text (last line ``tail``)."""
    if not draft or not tail:
        return False
    probe = draft[-24:]
    return probe in tail or tail[-24:] in draft
