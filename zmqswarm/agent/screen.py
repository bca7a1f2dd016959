"""What a pane shows, read without I/O: one probe of it, and whether its input line holds our
paste alone, our paste mixed with someone's keystrokes, or no longer our paste.

A probe is one batch on the query lane (``display-message`` + ``capture-pane``), so the
cursor, the mode and the screen it reports are of the same instant. Its cursor position and
history size are the "nothing changed since" condition the write lane checks, in the server,
in the same batch that pastes or presses Enter (zmqswarm.agent.paste).

Text is compared with all whitespace removed: a line wrapped by the terminal, trailing spaces
tmux trims, a TAB a REPL expanded and a continuation prompt's indentation then compare equal.
A paste leaves a ``Mark`` in pane options (the prompt it followed, its first and last 32
characters so squeezed), so that whoever looks later, this process or the next after a crash,
can tell our text from a human's without the message at hand.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

__all__ = ["GONE", "MIXED", "OURS", "Mark", "Probe", "holds", "plain_draft", "squeeze"]

OURS, MIXED, GONE = "ours", "mixed", "gone"
EDGE = 32  # characters of a paste's start and end that identify it

_SPACE = re.compile(r"\s+")


def squeeze(text: str) -> str:
    return _SPACE.sub("", text)


def cells(char: str) -> int:
    """Terminal columns of one character (wide East Asian and emoji: 2; combining: 0)."""
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def left_of(row: str, column: int) -> str:
    """The part of ``row`` drawn left of ``column``."""
    width = 0
    for i, char in enumerate(row):
        width += cells(char)
        if width > column:
            return row[:i]
    return row


@dataclass(frozen=True, slots=True)
class Mark:
    """How to recognize one paste in a pane: squeezed prompt before it, first and last
    characters. Stored as pane options beside ``@zs_pasted``."""

    prompt: str
    first: str
    last: str

    @classmethod
    def of(cls, prompt: str, text: str) -> Mark:
        """Edges within the first and last lines: a REPL shows a continuation prompt
        between the lines of a paste."""
        lines = [flat for line in text.split("\n") if (flat := squeeze(line))] or [""]
        return cls(squeeze(prompt)[-EDGE:], lines[0][:EDGE], lines[-1][-EDGE:])

    def fields(self) -> tuple[str, str, str]:
        return self.prompt, self.first, self.last


@dataclass(frozen=True, slots=True)
class Probe:
    """One pane at one instant. ``rows`` are the captured rows (some history first, then
    the visible screen); ``row`` is the cursor's index in them."""

    pane: str
    dead: bool
    in_mode: bool
    input_off: bool
    x: int
    y: int
    history: int
    hook: str  # @zs_state: idle | busy | ""
    pasted: str  # @zs_pasted: key of our last paste into this pane
    entered: str  # @zs_entered: key of our last Enter after a paste
    mark: Mark | None  # of the last paste, from the pane's options
    rows: list[str] = field(default_factory=list)
    row: int = 0

    @property
    def blocked(self) -> bool:
        return self.in_mode or self.input_off

    @property
    def screen(self) -> list[str]:
        """The visible screen (without the history rows)."""
        return self.rows[self.row - self.y :]

    @property
    def cursor_line(self) -> str:
        return self.rows[self.row] if 0 <= self.row < len(self.rows) else ""

    def unchanged(self) -> str:
        """A tmux format that is 1 while the pane is as this probe saw it: alive, no mode,
        input on, cursor and history where they were. No keystroke a program echoed, no
        output and no copy mode can come between this and a command gated on it."""
        return all_equal(
            pane_id=self.pane,
            pane_dead="0",
            pane_in_mode="0",
            pane_input_off="0",
            cursor_x=str(self.x),
            cursor_y=str(self.y),
            history_size=str(self.history),
        )


def all_equal(**expected: str) -> str:
    from zmqswarm.agent.gateway import all_of

    return all_of(*(f"#{{==:#{{{name}}},{value}}}" for name, value in expected.items()))


def holds(probe: Probe, mark: Mark) -> str:
    """Whether the input line holds the paste ``mark`` describes, as it was pasted (OURS),
    with someone's keystrokes before or after it (MIXED), or not at all (GONE: submitted,
    or cleared). For programs that show what is typed; the caller knows which do."""
    upto = [*probe.rows[: probe.row], left_of(probe.cursor_line, probe.x)]
    flat = squeeze("".join(upto))
    if mark.last and flat.endswith(mark.last):
        start = flat.rfind(mark.first) if mark.first else -1
        if start >= 0 and not flat[:start].endswith(mark.prompt):
            return MIXED  # a keystroke landed between the prompt and our text
        return OURS
    near = squeeze(probe.cursor_line) if mark.last else ""
    tail = mark.last[-8:]
    if tail and tail in near and not near.endswith(tail):
        return MIXED  # a keystroke after our text, on its last line
    return GONE


def plain_draft(baseline: str, probe: Probe) -> str:
    """For a program whose prompt no profile describes: what was typed after ``baseline``
    (the squeezed text left of the cursor when its input line was last known empty), "" if
    nothing. Only text that extends the baseline on the cursor's line counts: anything else
    may be the program's own output."""
    now = squeeze(left_of(probe.cursor_line, probe.x))
    if len(now) <= len(baseline) or not now.startswith(baseline):
        return ""
    return now[len(baseline) :]
