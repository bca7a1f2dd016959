"""The agent's intent journal: what it was about to paste, so a crash never pastes twice.

One line per event, appended: ``I <ticket>`` (fsynced before the paste), ``P <ticket>`` (the
paste command returned: the body is in the pane, maybe not yet submitted) and ``D <ticket>``
(after the ack). On a redelivery, an ``I`` without a ``D`` means the outcome is unknown: the
agent then looks for the ticket (its envelope carries it) in the pane's history instead of
pasting again, and after a ``P`` it never pastes again at all: at most it presses Enter.
The file is compacted to the unresolved intents when it grows.
"""

from __future__ import annotations

import os

__all__ = ["IntentLog"]


class IntentLog:
    def __init__(self, path: str, *, compact_after: int = 10_000) -> None:
        self.path = path
        self.compact_after = compact_after
        self.open: dict[str, str] = {}  # unresolved ticket -> last stage: "I" or "P"
        self._lines = 0
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    kind, _, ticket = line.rstrip("\n").partition(" ")
                    if kind in ("I", "P"):
                        self.open[ticket] = kind
                    elif kind == "D":
                        self.open.pop(ticket, None)
                    self._lines += 1
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def intend(self, ticket: str) -> None:
        """Record that ``ticket`` is about to be pasted; durable before this returns."""
        self.open[ticket] = "I"
        self._write(f"I {ticket}\n")
        os.fsync(self._fd)

    def pasted(self, ticket: str) -> None:
        """The paste went out. Not fsynced: this guards against the agent dying, and the
        kernel keeps a dead process's writes; a power cut falls back to the history look-up."""
        self.open[ticket] = "P"
        self._write(f"P {ticket}\n")

    def done(self, ticket: str) -> None:
        self.open.pop(ticket, None)
        self._write(f"D {ticket}\n")  # losing this line only costs a history look-up
        if self._lines > self.compact_after:
            self._compact()

    def _write(self, line: str) -> None:
        os.write(self._fd, line.encode())
        self._lines += 1

    def _compact(self) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            f.writelines(f"{stage} {t}\n" for t, stage in sorted(self.open.items()))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o600)
        self._lines = len(self.open)

    def close(self) -> None:
        os.close(self._fd)
