"""What a client core reports to its driver (``ClientCore.events()``): tickets accepted,
failed, notified or held, and the session coming up, going down or refused."""

from __future__ import annotations

import msgspec

from .frames import Code
from .send_window import Failed

__all__ = [
    "Accepted",
    "Event",
    "Failed",
    "Notified",
    "Progressed",
    "Refused",
    "SessionDown",
    "SessionUp",
]


class Accepted(msgspec.Struct, frozen=True):
    """The router has these seqs: they are in their recipients' mailboxes."""

    seqs: list[int]


class Notified(msgspec.Struct, frozen=True):
    """The router's final word on a ticket sent with ``notify``."""

    seq: int
    status: str
    code: int
    detail: str


class Progressed(msgspec.Struct, frozen=True):
    """The recipient holds ticket ``seq`` for ``reason`` (a ``notify`` ticket only)."""

    seq: int
    reason: str


class SessionUp(msgspec.Struct, frozen=True):
    router_epoch: int


class SessionDown(msgspec.Struct, frozen=True):
    reason: str


class Refused(msgspec.Struct, frozen=True):
    """The router refused the session for good (name taken, taken over, bad version)."""

    code: Code
    reason: str


Event = Accepted | Failed | Notified | Progressed | SessionUp | SessionDown | Refused
