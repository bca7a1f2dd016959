"""Payloads packed in one part: a Send or Deliver whose header has ``sizes`` carries one part
after it, holding its payloads end to end, instead of a part each. A batch then costs two
ZeroMQ parts, not one a message: each part is a call into libzmq and a Python object at both
ends. Pure functions, no I/O.
"""

from __future__ import annotations

__all__ = ["PACK_LIMIT", "pack_limit", "packed", "payloads_of"]


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
