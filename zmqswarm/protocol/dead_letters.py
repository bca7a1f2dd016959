"""The router's dead letters: messages it gave up on, kept (bounded) so they can be listed.

Sans-IO like the rest of the core: the router calls ``add`` when it buries a message and
``answer`` for a ListDead question; nothing here knows about sockets or clocks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .codec import MAX_BATCH
from .frames import Code
from .query_frames import DeadItem, DeadList

__all__ = ["DeadLetter", "DeadLetterStore"]


@dataclass(slots=True, frozen=True)
class DeadLetter:
    id: int
    to: str
    sender: str
    epoch: int
    seq: int
    payload: bytes
    code: Code
    at: float


class DeadLetterStore:
    """At most ``keep`` dead letters, numbered for the router's lifetime; the oldest go first
    (counted in ``dropped``)."""

    def __init__(self, keep: int) -> None:
        self._letters: deque[DeadLetter] = deque(maxlen=keep)
        self._last_id = 0
        self.dropped = 0

    def add(
        self, to: str, sender: str, epoch: int, seq: int, payload: bytes, code: Code, now: float
    ) -> bool:
        """Keep one more; True if the oldest had to go to make room."""
        full = len(self._letters) == self._letters.maxlen
        self.dropped += full
        self._last_id += 1
        self._letters.append(DeadLetter(self._last_id, to, sender, epoch, seq, payload, code, now))
        return full

    @property
    def last_id(self) -> int:
        return self._last_id

    @property
    def first_id(self) -> int:
        """The oldest kept letter's number (last_id + 1 when none is kept)."""
        return self._letters[0].id if self._letters else self._last_id + 1

    def restore(self, letter: DeadLetter) -> None:
        """One letter the journal kept, oldest first, under its own number."""
        self._letters.append(letter)
        self._last_id = max(self._last_id, letter.id)

    def answer(
        self, after: int, limit: int, drop_upto: int, now: float
    ) -> tuple[DeadList, list[bytes]]:
        """Forget ids ≤ ``drop_upto``; then up to ``limit`` letters with id > ``after``."""
        letters = self._letters
        while letters and letters[0].id <= drop_upto:
            letters.popleft()
        chosen = [d for d in letters if d.id > after][: max(0, min(limit, MAX_BATCH))]
        items = [
            DeadItem(d.id, d.to, d.sender, d.epoch, d.seq, int(d.code), int((now - d.at) * 1000))
            for d in chosen
        ]
        return DeadList(items, len(letters), self.dropped), [d.payload for d in chosen]

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(self._letters)

    def __len__(self) -> int:
        return len(self._letters)
