"""Headers to bytes and back, with the protocol's size and name rules.

One Encoder and one Decoder are built once and reused (msgspec perf tip). Payload parts never
pass through here: the codec only ever sees headers.
"""

from __future__ import annotations

import functools
import re

import msgspec

from zmqswarm.errors import RemoteProtocolError

from .frames import (
    Ack,
    Bye,
    Code,
    Deliver,
    Delivered,
    Frame,
    Heartbeat,
    Held,
    Hello,
    Hold,
    Nack,
    PeerState,
    Publish,
    Receipt,
    Send,
    Welcome,
)
from .query_frames import (
    DeadList,
    ListDead,
    ListPeers,
    Observe,
    ObserveTopics,
    PeerList,
    Snapshot,
    TopicSnapshot,
    TopicTick,
    TopicValue,
    Update,
)

__all__ = [
    "AnyFrame",
    "MAX_BATCH",
    "MAX_EPOCH",
    "MAX_HEADER",
    "MAX_NAME",
    "NAME_RULE",
    "DecodeFailure",
    "decode",
    "encode",
    "valid_name",
]

MAX_HEADER = 64 * 1024  # bytes in one header part
MAX_BATCH = 1024  # items in one Send or Deliver
MAX_NAME = 128  # characters in a peer name
# Epochs stay exact in a float64 (JavaScript's safe integers): a peer's epoch is 1..MAX_EPOCH.
MAX_EPOCH = (1 << 53) - 1

# A name starts with a letter or digit; '$' is reserved for the router's own mailboxes.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/+\-]*\Z")
NAME_RULE = (
    f"a name is 1 to {MAX_NAME} characters: a letter or digit, then letters, digits"
    " and . _ : @ / + -"
)

AnyFrame = (
    (Hello | Welcome | Send | Receipt | Nack | Deliver | Ack | Delivered | Heartbeat | Bye)
    | (Hold | Held | PeerState | Publish)
    | (ListDead | DeadList | ListPeers | PeerList)
    | (Observe | Snapshot | Update | ObserveTopics | TopicSnapshot | TopicValue | TopicTick)
)
"""Every kind a header may be: what ``decode`` returns."""

_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[AnyFrame] = msgspec.msgpack.Decoder(AnyFrame)
_KNOWN_TAGS = frozenset(t.__struct_config__.tag for t in AnyFrame.__args__)

encode = _encoder.encode
"""``encode(frame) -> bytes``: a header part."""


class DecodeFailure(RemoteProtocolError):
    """A header could not be decoded. ``code`` says why (BAD_FRAME, UNKNOWN_KIND, TOO_LARGE)."""

    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(f"{code.name}: {detail}")
        self.code = code
        self.detail = detail


def decode(header: bytes) -> AnyFrame:
    """Decode one header part; raise ``DecodeFailure`` with a precise code otherwise."""
    if len(header) > MAX_HEADER:
        raise DecodeFailure(Code.TOO_LARGE, f"header of {len(header)} bytes > {MAX_HEADER}")
    try:
        return _decoder.decode(header)
    except (msgspec.DecodeError, ValueError, RecursionError) as exc:  # ValueError: bad UTF-8
        raise _classify(header, exc) from exc


def _classify(header: bytes, exc: Exception) -> DecodeFailure:
    """Only on the error path: tell an unknown kind (a newer peer) from plain garbage. The tag
    is read by hand, so that garbage costs no second decode: only a header whose tag this
    router does not know is decoded again, untyped, to tell a newer peer's valid frame from
    garbage. That decode recurses into nested arrays and maps: a thousand of them (one byte
    each) is BAD_FRAME, never a RecursionError that stops the router."""
    tag = _tag(header)
    if tag is None or tag in _KNOWN_TAGS:
        return DecodeFailure(Code.BAD_FRAME, str(exc) if tag is not None else "not a frame")
    try:
        msgspec.msgpack.decode(header)
    except RecursionError:
        return DecodeFailure(Code.BAD_FRAME, "nested too deep")
    except (msgspec.DecodeError, ValueError):
        return DecodeFailure(Code.BAD_FRAME, "not MessagePack")
    return DecodeFailure(Code.UNKNOWN_KIND, f"unknown frame kind {tag}")


_ARRAY = {0xDC: 3, 0xDD: 5}  # array 16 and 32: where their first element starts
_UINT = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}  # uint 8 to 64: how many bytes follow


def _tag(header: bytes) -> int | None:
    """Element 0 of a MessagePack array (an unsigned integer), or None if ``header`` does
    not start as an array of at least one element whose first is one."""
    if not header:
        return None
    first = header[0]
    if 0x91 <= first <= 0x9F:
        at = 1
    elif first in _ARRAY and int.from_bytes(header[1 : _ARRAY[first]], "big") > 0:
        at = _ARRAY[first]
    else:
        return None
    if at >= len(header):
        return None
    marker = header[at]
    if marker <= 0x7F:
        return marker
    size = _UINT.get(marker)
    if size is None or at + 1 + size > len(header):
        return None
    return int.from_bytes(header[at + 1 : at + 1 + size], "big")


@functools.lru_cache(maxsize=4096)  # checked per message; the same few names come back
def valid_name(name: str) -> bool:
    """Whether ``name`` may be used as a peer name or recipient."""
    return 0 < len(name) <= MAX_NAME and _NAME.match(name) is not None


def tag_of(frame: Frame) -> int:
    """The integer tag of a frame's kind (for logs and counters)."""
    tag = type(frame).__struct_config__.tag
    assert isinstance(tag, int)
    return tag
