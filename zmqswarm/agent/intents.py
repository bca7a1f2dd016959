"""The agent's intent journal: which pane a message was about to be pasted into, so that a
crash never pastes it twice, and which messages are done, so that one delivered again is not
pasted again either.

One line per event, appended: ``I <ticket> <pane>`` (fsynced before the paste) and
``D <ticket>`` (after the ack). What happened between the two is not written here but in
the pane itself: the paste and the Enter each set a pane option in the same tmux batch
(zmqswarm.agent.paste), so the record cannot be split from the act by a crash, and dies with
the pane like the text it records. On a delivery of a ticket with an open intent, the agent
reads that pane (zmqswarm.agent.delivery.Delivery.resolve). Lines ``P <ticket>`` of journals
written before this scheme read as intents with the pane unknown.

The file is compacted to the open intents and the most recent done tickets when it grows.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from zmqswarm.private import make_dirs, open_private

__all__ = ["IntentLog"]


class IntentLog:
    def __init__(self, path: str, *, compact_after: int = 10_000, keep_done: int = 4096) -> None:
        self.path = path
        self.compact_after = compact_after
        self.keep_done = keep_done
        self.open: dict[str, str] = {}  # unresolved ticket -> pane ("" if not recorded)
        self.finished: OrderedDict[str, None] = OrderedDict()  # most recent last
        self._lines = 0
        # The default's directory is made private by run_agent; a path given with --journal
        # may lie in the user's own directory (their cwd, say): its missing parts are made
        # 0700, what exists is theirs and left as it is.
        make_dirs(os.path.dirname(path) or ".")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    kind, _, rest = line.rstrip("\n").partition(" ")
                    ticket, _, pane = rest.partition(" ")
                    if kind == "I" or (kind == "P" and ticket not in self.open):
                        self.open[ticket] = pane
                    elif kind == "D":
                        self.open.pop(ticket, None)
                        self._remember(ticket)
                    self._lines += 1
        self._fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def intend(self, ticket: str, pane: str) -> None:
        """Record that ``ticket`` is about to be pasted into ``pane``; durable before this
        returns."""
        self.open[ticket] = pane
        self._write(f"I {ticket} {pane}\n")
        os.fsync(self._fd)

    def done(self, ticket: str) -> None:
        """After the ack. Not fsynced: losing it costs one look at the pane."""
        self.open.pop(ticket, None)
        self._remember(ticket)
        self._write(f"D {ticket}\n")
        if self._lines > self.compact_after:
            self._compact()

    def was_done(self, ticket: str) -> bool:
        return ticket in self.finished

    def _remember(self, ticket: str) -> None:
        self.finished[ticket] = None
        self.finished.move_to_end(ticket)
        while len(self.finished) > self.keep_done:
            self.finished.popitem(last=False)

    def _write(self, line: str) -> None:
        os.write(self._fd, line.encode())
        self._lines += 1

    def _compact(self) -> None:
        tmp = f"{self.path}.tmp"
        with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "w") as f:
            f.writelines(f"D {t}\n" for t in self.finished)
            f.writelines(f"I {t} {pane}\n" for t, pane in sorted(self.open.items()))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND, 0o600)
        self._lines = len(self.open) + len(self.finished)

    def close(self) -> None:
        os.close(self._fd)
