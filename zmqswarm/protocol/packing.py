"""Payloads packed in one part: a Send or Deliver whose header has ``sizes`` carries one part
after it, holding its payloads end to end, instead of a part each. A batch then costs two
ZeroMQ parts, not one a message: each part is a call into libzmq and a Python object at both
ends. Pure functions, no I/O.
"""

from __future__ import annotations

from .codec import encode
from .frames import Send, SendItem
from .send_window import Outgoing

__all__ = ["PACK_LIMIT", "pack_limit", "packed", "payloads_of", "send_frames"]


def payloads_of(sizes: list[int], count: int, parts: list[bytes]) -> list[bytes] | None:
    """The ``count`` payloads after a Send's or a Deliver's header (``parts[0]``): the parts
    that follow it, one an item; or, with ``sizes``, the one part that follows, cut into
    pieces of those sizes. None if the parts do not fit the header."""
    if not sizes:
        return parts[1:] if len(parts) == count + 1 else None
    if len(sizes) != count or len(parts) != 2 or sum(sizes) != len(parts[1]):
        return None
    body, out, end = parts[1], [], 0
    for size in sizes:
        start, end = end, end + size
        out.append(body[start:end])
    return out


PACK_LIMIT = 1 << 20  # bytes a packed part holds at most, unless one payload is larger


def pack_limit(max_payload: int) -> int:
    """Bytes a packed part may hold for a receiver whose ``max_payload`` is this: one payload
    always fits its ZMQ_MAXMSGSIZE (four times that), so a part up to one payload does."""
    return min(PACK_LIMIT, max_payload)


def packed(payloads: list[bytes]) -> tuple[list[int], bytes]:
    """``payloads`` as one part, and the sizes that cut it back (``payloads_of``)."""
    return [len(p) for p in payloads], b"".join(payloads)


def send_frames(base: int, batch: list[Outgoing], limit: int) -> list[list[bytes]]:
    """``batch`` as Send frames: packed, each part ``limit`` bytes at most (or one payload);
    with ``limit`` 0 (a router that takes no packed Sends), one Send with a part a payload."""
    if not limit:
        return [_send(base, batch, pack=False)]
    out, start, size = [], 0, 0
    for i, m in enumerate(batch):
        n = len(m.payload)
        if size + n > limit and i > start:
            out.append(_send(base, batch[start:i], pack=True))
            start, size = i, 0
        size += n
    out.append(_send(base, batch[start:], pack=True))
    return out


def _send(base: int, run: list[Outgoing], pack: bool) -> list[bytes]:
    items = [SendItem(m.seq, m.to, m.prev, m.notify, m.ttl_ms) for m in run]
    payloads = [m.payload for m in run]
    if pack:
        sizes, body = packed(payloads)
        return [encode(Send(base, items, sizes)), body]
    return [encode(Send(base, items)), *payloads]
