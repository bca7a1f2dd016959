"""Which key may speak under which name: the router's check of every frame on a CURVE socket.

libzmq authenticates a connection once, at its handshake (the router's ZAP handler says
which key it is: the frame's User-Id). What it cannot know is the routing id the peer chose,
``NAME/EPOCH``, nor whether a later connection with the same routing id (once the first is
gone: with CURVE the router sets no ROUTER_HANDOVER) holds the same key. So each frame is
checked here: the first frame from a routing id binds it to its key, if that key may use
the NAME; a frame from the same routing id under another key is refused, as is every frame
of a revoked key.

Sans-IO: no sockets, no clock. The router core asks ``admit`` and acts on ``Refusal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import NamedTuple

__all__ = ["ADMIN_NAMES", "Access", "Refusal", "name_of"]

ADMIN_NAMES = "zs-admin-*"
"""Names any key may use: the send-only sessions of one-shot queries and observers."""

_MAX_BOUND = 200_000  # routing ids remembered; beyond, forgotten ones are checked again


class Refusal(NamedTuple):
    reason: str  # a counter's key: not_allowed, revoked
    detail: str


def name_of(identity: bytes) -> str:
    """The NAME of a routing id ``NAME/EPOCH`` (names may contain '/'; the epoch may not)."""
    return identity.rpartition(b"/")[0].decode("utf-8", "replace")


class Access:
    """Args:
    names: per key name, the peer names (fnmatch patterns) it may use. A key not listed
        may use its own name and ``KEY.*``; every key may use ``ADMIN_NAMES``.
    """

    def __init__(self, names: Mapping[str, Sequence[str]] | None = None) -> None:
        self.names = {key: tuple(patterns) for key, patterns in (names or {}).items()}
        self.owners: dict[bytes, str] = {}  # routing id -> the key its frames come with
        self.revoked: set[str] = set()

    def patterns(self, key: str) -> tuple[str, ...]:
        own = self.names.get(key, (key, f"{key}.*"))
        return (*own, ADMIN_NAMES)

    def permits(self, key: str, name: str) -> bool:
        return key not in self.revoked and any(fnmatchcase(name, p) for p in self.patterns(key))

    def admit(self, identity: bytes, key: str) -> Refusal | None:
        """None if a frame from ``identity`` under ``key`` may pass; else why not."""
        owner = self.owners.get(identity)
        if owner == key:
            return None
        if key in self.revoked:
            return Refusal("revoked", f"key {key!r} was revoked")
        name = name_of(identity)
        if not self.permits(key, name):
            if owner is not None:
                detail = f"key {key!r} sent as {name!r}, a routing id bound to key {owner!r}"
            else:
                detail = f"key {key!r} may not use the name {name!r}"
            return Refusal("not_allowed", detail)
        if len(self.owners) >= _MAX_BOUND:
            self.owners.clear()
        self.owners[identity] = key
        return None

    def revoke(self, key: str) -> list[bytes]:
        """Refuse ``key`` from now on; the routing ids it held, whose sessions must end."""
        self.revoked.add(key)
        held = [identity for identity, owner in self.owners.items() if owner == key]
        for identity in held:
            del self.owners[identity]
        return held

    def restore(self, key: str) -> None:
        """``key`` is trusted again (its file came back)."""
        self.revoked.discard(key)

    def forget(self, identity: bytes) -> None:
        self.owners.pop(identity, None)
