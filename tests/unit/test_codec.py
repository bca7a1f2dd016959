"""Headers round-trip; garbage is classified, never crashes."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from zmqswarm.protocol import (
    MAX_HEADER,
    Ack,
    Code,
    DecodeFailure,
    Deliver,
    DeliverItem,
    Hello,
    Nack,
    Receipt,
    Send,
    SendItem,
    decode,
    encode,
    valid_name,
)

names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
u63 = st.integers(0, 2**63 - 1)


@given(st.builds(Hello, version=st.integers(0, 9), name=names, epoch=u63))
def test_hello_round_trips(frame: Hello) -> None:
    assert decode(encode(frame)) == frame


@given(
    base=u63,
    items=st.lists(st.builds(SendItem, seq=u63, to=names, prev=u63, ttl_ms=u63), max_size=20),
)
def test_send_round_trips(base: int, items: list[SendItem]) -> None:
    frame = Send(base, items)
    assert decode(encode(frame)) == frame


def test_every_kind_round_trips() -> None:
    frames = [
        Receipt(5, [7, 9]),
        Nack(3, int(Code.MAILBOX_FULL), "bob: full", 200),
        Deliver(2, [DeliverItem(1, "alice", 9, 4, 2)]),
        Ack(2, 10),
    ]
    for frame in frames:
        assert decode(encode(frame)) == frame


@given(st.binary(max_size=64))
def test_garbage_is_a_decode_failure_never_a_crash(data: bytes) -> None:
    try:
        decode(data)
    except DecodeFailure as exc:
        assert exc.code in (Code.BAD_FRAME, Code.UNKNOWN_KIND)


def test_unknown_kind_is_told_from_garbage() -> None:
    with pytest.raises(DecodeFailure) as info:
        decode(msgspec.msgpack.encode([99, "from the future"]))
    assert info.value.code is Code.UNKNOWN_KIND
    with pytest.raises(DecodeFailure) as info:
        decode(b"\xc1\xc1")
    assert info.value.code is Code.BAD_FRAME


def test_truncated_and_oversized_headers() -> None:
    whole = encode(Send(1, [SendItem(1, "bob")]))
    with pytest.raises(DecodeFailure) as info:
        decode(whole[:-2])
    assert info.value.code is Code.BAD_FRAME
    with pytest.raises(DecodeFailure) as info:
        decode(b"\x90" * (MAX_HEADER + 1))
    assert info.value.code is Code.TOO_LARGE


def test_newer_peers_may_append_fields() -> None:
    # array_like evolution: a v1 decoder ignores trailing fields it does not know.
    raw = msgspec.msgpack.encode([7, 1, 42, [], "a field from the future"])
    assert decode(raw) == Ack(1, 42)


@pytest.mark.parametrize("name", ["bob", "agent-1", "a.b_c", "host:pane/3", "x" * 128])
def test_valid_names(name: str) -> None:
    assert valid_name(name)


@pytest.mark.parametrize("name", ["", "$dead", "-x", "has space", "new\nline", "x" * 129, "é"])
def test_invalid_names(name: str) -> None:
    assert not valid_name(name)
