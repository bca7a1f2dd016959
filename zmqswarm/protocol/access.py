"""Which key may speak under which name: the router's check of every frame on a CURVE socket.

libzmq authenticates a connection once, at its handshake (the router's ZAP handler says
which key it is: the frame's User-Id). What it cannot know is the routing id the peer chose,
``NAME/EPOCH.SECRET``, nor whether a later connection with the same routing id (which takes
it over: ROUTER_HANDOVER) holds the same key. So each frame is
checked here: the first frame from a routing id binds it to its key, if that key may use
the NAME; a frame from the same routing id under another key is refused, as is every frame
of a revoked key.

Sans-IO: no sockets, no clock. The router core asks ``admit`` and acts on ``Refusal``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import NamedTuple

__all__ = ["ADMIN_NAMES", "Access", "Refusal", "name_of"]

ADMIN_NAMES = "zs-admin-*"
"""Names any key may use: the send-only sessions of one-shot queries and observers."""

# NAME/EPOCH.SECRET: an id without its secret could be taken over by any key that may use
# the name (the router sets ROUTER_HANDOVER), and be handed the mail of its session.
_SECRET = re.compile(rb"/[0-9a-f]+\.[0-9a-f]{16}\Z")
_MAX_BOUND = 200_000  # routing ids remembered; beyond, forgotten ones are checked again


class Refusal(NamedTuple):
    reason: str  # a counter's key: not_allowed, revoked
    detail: str


def name_of(identity: bytes) -> str:
    """The NAME of a routing id ``NAME/EPOCH[.SECRET]`` (names may contain '/'; the rest may
    not)."""
    return identity.rpartition(b"/")[0].decode("utf-8", "replace")


class Access:
    """Args:
    names: per key name, the peer names (fnmatch patterns) it may use. A key not listed
        may use its own name and ``KEY.*``; every key may use ``ADMIN_NAMES``.

    ``keys`` maps each trusted key (its Z85 text, a frame's User-Id) to its name; the
    driver sets it from the allow list. A key not in it is refused as revoked.
    """

    def __init__(self, names: Mapping[str, Sequence[str]] | None = None) -> None:
        self.names = {key: tuple(patterns) for key, patterns in (names or {}).items()}
        self.keys: dict[str, str] = {}
        self.owners: dict[bytes, str] = {}  # routing id -> the key its frames come with

    def patterns(self, name: str) -> tuple[str, ...]:
        own = self.names.get(name, (name, f"{name}.*"))
        return (*own, ADMIN_NAMES)

    def permits(self, name: str, peer: str) -> bool:
        """May the key called ``name`` speak as peer ``peer``?"""
        return any(fnmatchcase(peer, p) for p in self.patterns(name))

    def admit(self, identity: bytes, key: str) -> Refusal | None:
        """None if a frame from ``identity`` under ``key`` may pass; else why not."""
        owner = self.owners.get(identity)
        if owner == key:
            return None
        name = self.keys.get(key)
        if name is None:
            return Refusal("revoked", f"key {key[:8]}… is no longer in the allow list")
        if not _SECRET.search(identity):
            detail = f"routing id {identity[:80]!r} lacks the .SECRET a CURVE peer's must end in"
            return Refusal("not_allowed", detail)
        peer = name_of(identity)
        if not self.permits(name, peer):
            if owner is not None:
                held = self.keys.get(owner, owner[:8] + "…")
                detail = f"key {name!r} sent as {peer!r}, a routing id bound to key {held!r}"
            else:
                detail = f"key {name!r} may not use the name {peer!r}"
            return Refusal("not_allowed", detail)
        if len(self.owners) >= _MAX_BOUND:
            self.owners.clear()
        self.owners[identity] = key
        return None

    def revoke(self, key: str) -> list[bytes]:
        """Refuse ``key`` from now on; the routing ids it held, whose sessions must end."""
        self.keys.pop(key, None)
        held = [identity for identity, owner in self.owners.items() if owner == key]
        for identity in held:
            del self.owners[identity]
        return held

    def forget(self, identity: bytes) -> None:
        self.owners.pop(identity, None)
