"""The frames of the peers' sessions, one msgspec Struct per kind (queries and the
observers' feed: query_frames.py).

A zmqswarm message on the wire is a ZeroMQ multipart message. Its first part is the header:
one of the Structs below, MessagePack-encoded as an array whose first element is the kind's
integer tag. ``Send`` and ``Deliver`` carry a batch of items, and after the header come their
payloads, opaque bytes nobody decodes: ``len(items)`` parts, one per item, in order; or, when
the header's ``sizes`` is given, one part holding them all end to end (packing.py cuts it),
which costs a batch two ZeroMQ parts instead of one per message. Every other kind is a single
part. docs/protocol.md is the full specification.

Evolution rules (msgspec's array_like schema evolution): fields are only ever appended, each new
field gets a default, and decoders accept (ignore) trailing fields they do not know.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated

import msgspec

__all__ = [
    "PROTOCOL_VERSION",
    "Ack",
    "Bye",
    "Code",
    "Deliver",
    "DeliverItem",
    "Delivered",
    "Frame",
    "Heartbeat",
    "Held",
    "Hello",
    "Hold",
    "Nack",
    "PeerState",
    "Publish",
    "PublishItem",
    "Receipt",
    "Send",
    "SendItem",
    "Status",
    "Welcome",
]

PROTOCOL_VERSION = 1

# What a peer chooses in a Send is checked as it is decoded (in C, at no cost): integers
# within 0..2^53-1 (a seq from 1), at most 1024 items. Out of range: BAD_FRAME.
_U53 = (1 << 53) - 1
U53 = Annotated[int, msgspec.Meta(ge=0, le=_U53)]
Seq = Annotated[int, msgspec.Meta(ge=1, le=_U53)]


class Code(IntEnum):
    """Error codes carried by ``Nack.code`` (and ``Delivered.code`` for failures)."""

    BAD_FRAME = 1  # header undecodable or part count wrong
    UNKNOWN_KIND = 2  # header tag not known to this router
    BAD_VERSION = 3  # Hello.version not supported
    NOT_WELCOMED = 4  # a frame before Hello (e.g. after a router restart): say Hello again
    NAME_TAKEN = 5  # another live session holds the name
    INVALID_NAME = 6  # name or recipient does not match the name rules
    TOO_LARGE = 7  # payload or header over the size limit
    MAILBOX_FULL = 8  # recipient's mailbox at its limit: retry later
    ROUTER_FULL = 9  # router-wide memory limit reached: retry later
    OUT_OF_ORDER = 10  # the previous message of this pair is not accepted yet: resend both
    SHUTTING_DOWN = 11  # router is draining for shutdown: retry (after reconnect)
    WINDOW = 12  # seq beyond the sender's window: resend later
    EXPIRED = 13  # ttl passed before the message could be delivered
    MAX_ATTEMPTS = 14  # delivered max-attempts times without an ack
    TAKEN_OVER = 15  # another peer took this name over; this session is closed
    STORE_FULL = 16  # the router's journal cannot write (disk full or failing): retry later
    NOT_ALLOWED = 17  # this CURVE key may not use this name (or this routing id is another's)
    REVOKED = 18  # this CURVE key was revoked: the session is over, and no other opens

    @property
    def retriable(self) -> bool:
        return self in _RETRIABLE


_RETRIABLE = frozenset(
    {Code.NOT_WELCOMED, Code.MAILBOX_FULL, Code.ROUTER_FULL}
    | {Code.OUT_OF_ORDER, Code.SHUTTING_DOWN, Code.WINDOW, Code.STORE_FULL}
)


class Status:
    """Values of ``Delivered.status``."""

    DELIVERED = "delivered"
    EXPIRED = "expired"
    DEAD = "dead"


class Frame(msgspec.Struct, array_like=True, frozen=True, tag=True):
    """Base of every header. Never sent itself."""


class Hello(Frame, tag=1, frozen=True):
    """Peer → router, first frame of a session (and again to resume one).

    ``epoch`` names this incarnation of the peer: (name, epoch, seq) identifies a message
    forever. ``window`` is how many deliveries may be unacked at once (credit). ``attempt``
    counts this peer's Hellos: the Welcome echoes it, and the router ignores a Hello older
    than one it has answered (a stale copy must not reset a newer session). A ``send_only``
    session never receives: it may share its name with a live receiving peer (``zs send``
    from inside an agent's pane sends as that agent), and is never refused as NAME_TAKEN.
    ``resume`` is the session number the peer held until now (0: none): the Welcome says
    whether that session was still alive, so the peer knows whether its name stayed its own.
    """

    version: int
    name: str
    epoch: int
    window: int = 1024
    takeover: bool = False
    attempt: int = 0
    send_only: bool = False
    resume: int = 0
    packed: bool = False  # it takes Deliver frames with their payloads in one part


class Welcome(Frame, tag=2, frozen=True):
    """Router → peer: the session is open. ``session`` numbers it (Deliver and Ack carry it, so
    frames of an earlier session are recognised as stale). ``acked`` is the router's watermark
    for this (name, epoch) stream: every seq up to it is accepted; the peer resends the rest.
    ``heartbeat_ms``: the router's ZMTP heartbeat interval. ``redeliver_ms``: 0, the router
    never resends a delivery to a live session (it resends what a session left unacked when
    the session ends). ``resumed``: the Hello's ``resume`` session was alive until this Hello,
    so no other peer can have held the name meanwhile. ``liveness_ms``: the shortest silence
    on its connection after which the router may end a session (its ZMTP heartbeat timeout)."""

    version: int
    router_epoch: int
    session: int
    acked: int
    heartbeat_ms: int
    max_payload: int
    attempt: int = 0
    redeliver_ms: int = 0
    resumed: bool = False
    liveness_ms: int = 0
    packed: bool = False  # it takes Send frames with their payloads in one part


class SendItem(msgspec.Struct, array_like=True, frozen=True):
    """One message in a ``Send`` batch. ``prev`` is the seq of the sender's previous message
    to the same recipient (0 if none): the router accepts this one only after that one, which
    keeps per-pair order across losses and resends."""

    seq: Seq
    to: str
    prev: U53 = 0
    notify: bool = False
    ttl_ms: U53 = 0


class Send(Frame, tag=3, frozen=True):
    """Peer → router: a batch of messages, followed by one payload part per item.

    ``base`` is the sender's lowest unsettled seq: everything below it is settled at the
    sender (receipted or abandoned), so the router may forget it."""

    base: U53
    items: Annotated[list[SendItem], msgspec.Meta(max_length=1024)]
    sizes: Annotated[list[U53], msgspec.Meta(max_length=1024)] = []  # packed: see packing.py


class Receipt(Frame, tag=4, frozen=True):
    """Router → sender: every seq ≤ ``upto`` and every seq in ``seqs`` is accepted."""

    upto: int
    seqs: list[int] = []


class Nack(Frame, tag=5, frozen=True):
    """Router → peer: a message (``seq`` > 0) or the frame/session (``seq`` = 0) is refused.
    ``retry_ms`` hints when a retriable refusal is worth retrying."""

    seq: int
    code: int
    reason: str = ""
    retry_ms: int = 0


class DeliverItem(msgspec.Struct, array_like=True, frozen=True):
    """One message in a ``Deliver`` batch. ``dseq`` numbers deliveries within the session;
    (sender, epoch, seq) is the sender's ticket; ``attempt`` counts deliveries of it;
    ``ttl_left_ms`` (0: none) is how long the message had left to live when it was sent;
    ``notify``: its sender waits for the outcome, so its Ack should not be held back."""

    dseq: int
    sender: str
    epoch: int
    seq: int
    attempt: int = 1
    ttl_left_ms: int = 0
    notify: bool = False


class Deliver(Frame, tag=6, frozen=True):
    """Router → recipient: a batch of messages, followed by one payload part per item.
    Within a session, dseqs are consecutive and the recipient takes them only in order."""

    session: int
    items: list[DeliverItem]
    sizes: Annotated[list[U53], msgspec.Meta(max_length=1024)] = []  # packed: see packing.py


class Ack(Frame, tag=7, frozen=True):
    """Recipient → router: every delivery of ``session`` with dseq ≤ ``upto`` is handed over.
    ``notes`` optionally say how some of them ended (dseq, outcome), e.g. a tmux agent's
    ``submitted in 182 ms``; the router passes a note on in the sender's Delivered notice."""

    session: int
    upto: int
    notes: list[tuple[int, str]] = []


class Delivered(Frame, tag=8, frozen=True):
    """Router → sender, for tickets sent with ``notify``: the final outcome of message ``seq``.
    ``status`` is one of ``Status``; ``code``/``detail`` explain a failure."""

    seq: int
    status: str
    code: int = 0
    detail: str = ""


class Heartbeat(Frame, tag=9, frozen=True):
    """Either way, and never needed to stay connected (ZMTP heartbeats do that). Router →
    peer with ``nonce`` 0: a probe, sent when the router must learn whether a peer's
    connection is gone (the send fails if it is); ignore it. Peer → router with ``nonce`` > 0:
    a ping; the router echoes it (same nonce) if the session is alive, else Nack NOT_WELCOMED.
    A peer pings to renew its lease before it hands over mail after a silence."""

    nonce: int = 0


class Bye(Frame, tag=10, frozen=True):
    """Peer → router: the session ends cleanly (undelivered mail stays in the mailbox)."""


class Hold(Frame, tag=11, frozen=True):
    """Recipient → router: delivery ``dseq`` of ``session`` is held, not handed over yet, and
    why (``reason``, e.g. a tmux agent's ``dead: no live pane``). Not an ack: the message
    stays the router's. The router stops counting the delivery as overdue (no redelivery
    while the recipient says it holds it) and tells a sender that asked for ``notify``."""

    session: int
    dseq: int
    reason: str


class Held(Frame, tag=12, frozen=True):
    """Router → sender, for tickets sent with ``notify``: the recipient holds message ``seq``
    for ``reason``. Informational: a Delivered notice still ends the ticket."""

    seq: int
    reason: str


class PeerState(Frame, tag=17, frozen=True):
    """Peer → router: what this peer is doing, in its own words (at most 512 bytes kept),
    e.g. a tmux agent's ``live %3`` or ``dead: no live pane for bob``. The router keeps the
    latest for the session, shows it in PeerList, and forgets it when the session ends;
    a client sends it again after every Welcome. Send-only sessions' states are ignored."""

    state: str


class PublishItem(msgspec.Struct, array_like=True, frozen=True):
    """One topic value in a ``Publish`` batch. ``ttl_ms`` (0: none): the router forgets the
    value that long after it took it, unless a newer publish of the topic comes first."""

    topic: str
    ttl_ms: int = 0


class Publish(Frame, tag=21, frozen=True):
    """Peer → router: the latest value of some topics, followed by one payload part per item.
    No answer: the router keeps the last value per topic and publishes it to observers at most
    once per ``topic_interval`` (coalesced), and not at all if it equals the value it last
    published. At most once: a value a full router refuses is only counted."""

    items: Annotated[list[PublishItem], msgspec.Meta(max_length=1024)]
