"""The checker every fault test uses: what the senders attempted against what the recipients
handed over, counted (after Jepsen's ``total-queue``, with duplicates and reordering failures).

A **history** is one sender's attempts in the order it made them, each with its outcome as the
sender saw it: receipted (the router accepted it), unknown (timed out: the sender cannot tell)
or refused (the router said no). A **log** is one recipient's hand-overs to its application,
in order. A message names itself in its payload (``sender:counter:incarnation``, see
``payload``), so nothing here knows the protocol: only what each side wrote down.

- **lost**: receipted, never handed to its recipient.
- **duplicated**: handed to its recipient more than once.
- **reordered**: handed over out of send order within its (sender incarnation, recipient)
  pair; counted as the fewest hand-overs that, taken out, leave the pair in order.
- **unexpected**: handed to a recipient it was never sent to, or sent and refused.
- **recovered**: not receipted (unknown) and handed over exactly once: fine, and worth a look.

A run passes with 0 lost, 0 duplicated, 0 reordered and 0 unexpected. ``check`` is pure; the
two readers parse the files the fault-test peers write (tests/integration/peer.py), where a
line is written whole and flushed before the sender sends (or the recipient acks): a process
killed with SIGKILL leaves at most one torn line, the last, which the readers ignore.
"""

from __future__ import annotations

import enum
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "MsgId",
    "Outcome",
    "Report",
    "Sent",
    "check",
    "parse_history",
    "parse_log",
    "payload",
    "read_history",
    "read_log",
]


class Outcome(enum.Enum):
    """A send's outcome as its sender saw it (Jepsen's ok / info / fail)."""

    RECEIPTED = "ok"
    UNKNOWN = "info"
    REFUSED = "fail"


class MsgId(NamedTuple):
    """A message's identity, as it travels in its payload."""

    sender: str
    incarnation: str  # one run of the sender process: its counters start again
    counter: int

    def __str__(self) -> str:
        return f"{self.sender}:{self.counter}"


class Sent(NamedTuple):
    """One attempt: the message, its recipient, what the sender saw; times are
    ``time.monotonic_ns()`` (0 when not known) of the attempt and of the outcome."""

    id: MsgId
    to: str
    outcome: Outcome
    sent_ns: int = 0
    settled_ns: int = 0


def payload(id: MsgId) -> str:
    """The payload that carries ``id``: ``sender:counter:incarnation``."""
    return f"{id.sender}:{id.counter}:{id.incarnation}"


def parse_payload(text: str) -> MsgId:
    sender, counter, incarnation = text.rsplit(":", 2)  # a name may hold ':'
    return MsgId(sender, incarnation, int(counter))


# -- the check ----------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Report:
    """What ``check`` counted. ``str(report)`` is its one-line summary, for assert messages."""

    attempted: int
    receipted: int
    unknown: int  # not receipted and never handed over: indeterminate, not a failure
    refused: int
    handed: int  # hand-overs, duplicates included
    lost: list[Sent] = field(default_factory=list)
    duplicated: list[tuple[str, MsgId, int]] = field(default_factory=list)  # (to, id, times)
    reordered: list[tuple[str, MsgId]] = field(default_factory=list)  # (recipient, id)
    unexpected: list[tuple[str, MsgId]] = field(default_factory=list)  # (recipient, id)
    recovered: list[Sent] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.reordered or self.unexpected)

    def summary(self, examples: int = 5) -> str:
        def some(items: Sequence[str]) -> str:
            more = len(items) - examples
            return ", ".join(items[:examples]) + (f" (+{more} more)" if more > 0 else "")

        named = [
            ("lost", [f"{s.id}->{s.to}" for s in self.lost]),
            ("duplicated", [f"{i}->{to} x{n}" for to, i, n in self.duplicated]),
            ("reordered", [f"{i}->{to}" for to, i in self.reordered]),
            ("unexpected", [f"{i}->{to}" for to, i in self.unexpected]),
        ]
        counts = ", ".join(f"{name} {len(items)}" for name, items in named)
        line = (
            f"{'PASS' if self.ok else 'FAIL'}: {counts}; recovered {len(self.recovered)},"
            f" unknown {self.unknown}; of {self.attempted} attempted ({self.receipted}"
            f" receipted, {self.refused} refused), {self.handed} handed over"
        )
        return "".join([line, *(f"; {name}: {some(items)}" for name, items in named if items)])

    __str__ = summary

    def __repr__(self) -> str:
        return f"<Report {self.summary(examples=2)}>"


def check(histories: Iterable[Sequence[Sent]], logs: Mapping[str, Sequence[MsgId]]) -> Report:
    """Count what the recipients' ``logs`` (recipient name -> hand-overs in order) say about
    what the senders' ``histories`` (each one sender's attempts, in order) attempted."""
    sent: dict[MsgId, Sent] = {}
    order: dict[MsgId, int] = {}  # position in its sender's history: the send order
    for history in histories:
        for position, attempt in enumerate(history):
            if attempt.id in sent:
                raise ValueError(f"{attempt.id} attempted twice: a history must name each once")
            sent[attempt.id] = attempt
            order[attempt.id] = position

    duplicated: list[tuple[str, MsgId, int]] = []
    reordered: list[tuple[str, MsgId]] = []
    unexpected: list[tuple[str, MsgId]] = []
    arrived: Counter[MsgId] = Counter()  # hand-overs to the right recipient
    for recipient, log in logs.items():
        times = Counter(log)
        pairs: defaultdict[tuple[str, str], list[MsgId]] = defaultdict(list)
        for id in times:  # first hand-overs, in log order (a Counter keeps insertion order)
            was = sent.get(id)
            if was is None or was.to != recipient or was.outcome is Outcome.REFUSED:
                unexpected.append((recipient, id))
                continue
            arrived[id] = times[id]
            if times[id] > 1:
                duplicated.append((recipient, id, times[id]))
            pairs[id.sender, id.incarnation].append(id)
        for ids in pairs.values():
            reordered.extend((recipient, id) for id in _out_of_order(ids, order))

    lost = [s for s in sent.values() if s.outcome is Outcome.RECEIPTED and not arrived[s.id]]
    in_doubt = [s for s in sent.values() if s.outcome is Outcome.UNKNOWN]
    return Report(
        attempted=len(sent),
        receipted=sum(s.outcome is Outcome.RECEIPTED for s in sent.values()),
        unknown=sum(not arrived[s.id] for s in in_doubt),
        refused=sum(s.outcome is Outcome.REFUSED for s in sent.values()),
        handed=sum(len(log) for log in logs.values()),
        lost=lost,
        duplicated=duplicated,
        reordered=reordered,
        unexpected=unexpected,
        recovered=[s for s in in_doubt if arrived[s.id] == 1],
    )


def _out_of_order(ids: list[MsgId], order: Mapping[MsgId, int]) -> list[MsgId]:
    """The fewest of ``ids`` whose removal leaves the rest in send order: all but a longest
    increasing subsequence (patience sorting, O(n log n)). One message handed over early
    counts once, not once for each message it overtook."""
    tails: list[int] = []  # tails[k]: send position ending the best run of length k + 1
    tail_at: list[int] = []  # index in ids of that end
    back: list[int] = []  # back[i]: index of the message before ids[i] in its run, or -1
    for i, id in enumerate(ids):
        position = order[id]
        k = bisect_left(tails, position)
        back.append(tail_at[k - 1] if k else -1)
        if k == len(tails):
            tails.append(position)
            tail_at.append(i)
        else:
            tails[k] = position
            tail_at[k] = i
    keep = set()
    i = tail_at[-1] if tail_at else -1
    while i >= 0:
        keep.add(i)
        i = back[i]
    return [id for i, id in enumerate(ids) if i not in keep]


# -- the files the fault-test peers write -------------------------------------------------


def _complete_lines(text: str) -> list[str]:
    """The newline-terminated lines: a writer killed mid-line leaves a torn last one."""
    return text[: text.rfind("\n") + 1].splitlines()


def parse_history(text: str) -> list[Sent]:
    """A sender's history file (peer.py ``feed``), one event a line:

    ``start NAME INCARNATION NS``  a sender process starts (its counters from 0)
    ``send COUNTER TO NS``         written, flushed, before the message is sent
    ``ok COUNTER NS``              the router receipted it
    ``fail COUNTER NS REASON``     the router refused it
    ``info COUNTER NS``            the sender gave up waiting: it cannot tell

    A ``send`` with no outcome line (its process was killed) is unknown."""
    attempts: dict[MsgId, Sent] = {}
    name = incarnation = ""
    for line in _complete_lines(text):
        kind, *rest = line.split(" ")
        if kind == "start":
            name, incarnation = rest[0], rest[1]
            continue
        id = MsgId(name, incarnation, int(rest[0]))
        if kind == "send":
            attempts[id] = Sent(id, rest[1], Outcome.UNKNOWN, int(rest[2]))
        else:
            attempts[id] = attempts[id]._replace(outcome=Outcome(kind), settled_ns=int(rest[1]))
    return list(attempts.values())


def parse_log(text: str) -> list[MsgId]:
    """A recipient's log (peer.py ``take``): ``SENDER PAYLOAD ATTEMPT NS`` a hand-over."""
    return [parse_payload(line.split(" ")[1]) for line in _complete_lines(text)]


def read_history(path: Path) -> list[Sent]:
    return parse_history(path.read_text()) if path.exists() else []


def read_log(path: Path) -> list[MsgId]:
    return parse_log(path.read_text()) if path.exists() else []
