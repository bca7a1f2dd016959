"""How one delivery ended (``Outcome``, whose ``note()`` goes back with the ack) and what it
waited for on the way (``Holds``: what the router, the sender and ``zs peers`` are told, and
the bound after which the wait ends).

Outcomes: ``submitted`` (pasted and submitted by our Enter), ``recovered`` (an agent before
this one pasted it, and what the pane showed finished it: see docs/agent.md, "Crashes"),
``typed_not_submitted`` (in the input line, our Enters did not submit it), ``no_evidence``,
``duplicate`` (delivered before, delivered again by the router: not pasted again), and two
that the router makes dead letters: ``expired`` (its ttl passed before it was pasted) and
``stalled`` (it waited longer than the profile's ``max-hold``). The last two are acked with
a note starting ``expired:``, which is how a recipient tells the router it dropped a message
unhandled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Holds", "Outcome", "Stats"]


@dataclass(slots=True)
class Outcome:
    """How one delivery ended; ``note()`` is what goes back with the ack."""

    status: str
    wait_ms: float = 0.0  # receipt -> ready
    paste_ms: float = 0.0  # ready -> pasted
    submit_ms: float = 0.0  # pasted -> Enter sent
    verify_ms: float = 0.0  # Enter -> verified
    enters: int = 1
    held: list[tuple[str, float]] = field(default_factory=list)  # (outcome, seconds) waited
    detail: str = ""  # why, for the outcomes that end a wait

    def note(self) -> str:
        held = " held=" + ",".join(f"{w}:{s:.1f}s" for w, s in self.held) if self.held else ""
        if self.status == "expired":  # the router makes this a dead letter, not a delivery
            return f"expired: its ttl passed after {self.wait_ms:.0f} ms waiting for the pane{held}"
        if self.status == "stalled":
            return f"expired: stalled: {self.detail}{held}"
        if self.status == "duplicate":
            return "duplicate: delivered before, not pasted again"
        note = (
            f"{self.status} wait={self.wait_ms:.0f} paste={self.paste_ms:.0f}"
            f" submit={self.submit_ms:.0f} verify={self.verify_ms:.0f} ms enters={self.enters}"
        )
        if self.detail:
            note += f" ({self.detail})"
        return note + held


@dataclass
class Stats:
    delivered: int = 0
    deferred: int = 0  # deliveries that had to wait (draft, copy mode, busy)
    dead: int = 0  # times a writer found its pane dead or gone
    outcomes: dict[str, int] = field(default_factory=dict)


class Holds:
    """What one message waits for, said to whoever listens, and the bound of the wait.

    ``say(outcome, why)`` reports a wait: to ``tell`` (the router's Hold, which a sender
    with ``notify`` sees as ``ticket.progress``, and ``zs peers``) at once when the outcome
    changes, and again every ``every`` seconds (the router takes back a delivery nobody
    holds). The text carries how long it has waited against ``bound``, so a reader sees it
    end. ``over()`` says, once the wait has lasted ``bound`` seconds, why it ended."""

    def __init__(
        self,
        tell: Callable[[str], None],
        clock: Callable[[], float],
        *,
        bound: float,
        every: float = 2.0,
        on_new: Callable[[str, str], None] | None = None,
    ) -> None:
        self.tell = tell
        self.clock = clock
        self.bound = bound
        self.every = every
        self.on_new = on_new
        self.started = clock()
        self.held: list[tuple[str, float]] = []
        self.outcome = ""
        self.why = ""
        self._since = 0.0
        self._told_at = 0.0

    def waited(self) -> float:
        return self.clock() - self.started

    def say(self, outcome: str, why: str) -> None:
        now = self.clock()
        new = outcome != self.outcome
        if new:
            self._close(now)
            self.outcome, self._since = outcome, now
            if self.on_new is not None:
                self.on_new(outcome, why)
        since = now - self._told_at
        # A new outcome at once; a new reason (a draft growing) soon; the same, now and then.
        if new or (why != self.why and since >= 0.5) or since >= self.every:
            self.why = why
            self._told_at = now
            self.tell(self.text())

    def text(self) -> str:
        waited = f"held {self.waited():.0f}s"
        if self.bound:
            waited += f" of at most {self.bound:.0f}s"
        return f"{self.outcome}: {self.why} · {waited}"

    def over(self) -> str:
        """Why the wait ended ("" while it has not): it lasted the bound."""
        if not self.bound or self.waited() < self.bound:
            return ""
        why = f"{self.outcome}: {self.why}" if self.outcome else "the pane never became ready"
        return f"held {self.waited():.0f}s, the bound is {self.bound:.0f}s: {why}"

    def ready(self) -> None:
        """The wait is over (the pane took it): close the current hold's account."""
        self._close(self.clock())
        self.outcome = ""

    def _close(self, now: float) -> None:
        if self.outcome:
            self.held.append((self.outcome, now - self._since))
