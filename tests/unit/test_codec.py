"""Headers round-trip; garbage is classified, never crashes."""

from __future__ import annotations

import typing

import msgspec
import pytest
from hypothesis import given, settings
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
    Welcome,
    decode,
    encode,
    valid_name,
)
from zmqswarm.protocol.codec import MAX_BATCH, MAX_EPOCH, AnyFrame
from zmqswarm.protocol.frames import Frame
from zmqswarm.protocol.packing import packed, payloads_of

names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
u63 = st.integers(0, 2**63 - 1)
u53 = st.integers(0, MAX_EPOCH)
seqs = st.integers(1, MAX_EPOCH)


@given(st.builds(Hello, version=st.integers(0, 9), name=names, epoch=u63))
def test_hello_round_trips(frame: Hello) -> None:
    assert decode(encode(frame)) == frame


@given(
    base=u53,
    items=st.lists(st.builds(SendItem, seq=seqs, to=names, prev=u53, ttl_ms=u53), max_size=20),
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


def decodes_or_fails_cleanly(data: bytes) -> None:
    """Totality: a frame, or a DecodeFailure with a code a Nack may carry; nothing else."""
    try:
        frame = decode(data)
    except DecodeFailure as exc:
        assert exc.code in (Code.BAD_FRAME, Code.UNKNOWN_KIND, Code.TOO_LARGE)
    else:
        assert isinstance(frame, Frame)


@given(st.binary(max_size=64))
def test_garbage_is_a_decode_failure_never_a_crash(data: bytes) -> None:
    decodes_or_fails_cleanly(data)


@settings(max_examples=200)
@given(st.binary(min_size=64, max_size=4096))
def test_longer_garbage_too(data: bytes) -> None:
    decodes_or_fails_cleanly(data)


# -- every kind, valid, then mutated -----------------------------------------------------------

KINDS: list[type[Frame]] = list(typing.get_args(AnyFrame))


def values_of(tp: object) -> st.SearchStrategy[typing.Any]:
    """Values of a field's type as a peer may send them: ints within 0..2^53-1, and within
    the field's own bounds (msgspec.Meta) if it has any."""
    low, high = 0, MAX_EPOCH
    if typing.get_origin(tp) is typing.Annotated:
        tp, *metas = typing.get_args(tp)
        for meta in metas:
            low, high = meta.ge if meta.ge is not None else low, meta.le or high
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(low, high)
    if tp is str:
        return st.text(max_size=24)
    if origin is list:
        return st.lists(values_of(args[0]), max_size=4)
    if origin is tuple:
        return st.tuples(*(values_of(a) for a in args))
    if origin is dict:
        return st.dictionaries(values_of(args[0]), values_of(args[1]), max_size=4)
    assert isinstance(tp, type) and issubclass(tp, msgspec.Struct), tp
    return structs(tp)


def structs(tp: type[msgspec.Struct]) -> st.SearchStrategy[typing.Any]:
    hints = typing.get_type_hints(tp, include_extras=True)
    fields = {f.name: values_of(hints[f.name]) for f in msgspec.structs.fields(tp)}
    return st.builds(tp, **fields)


any_frame = st.one_of(*(structs(kind) for kind in KINDS))


@given(any_frame)
def test_every_kind_round_trips_from_any_values(frame: Frame) -> None:
    assert decode(encode(frame)) == frame


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid header of any kind, then byte flips, a cut, insertions and deletions."""
    data = bytearray(encode(draw(any_frame)))
    for _ in range(draw(st.integers(1, 4))):
        how = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        at = draw(st.integers(0, len(data)))
        if how == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[at:]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "delete":
            del data[at : at + draw(st.integers(1, 4))]
    return bytes(data)


@settings(max_examples=500)
@given(mutated())
def test_mutated_frames_of_every_kind_decode_or_fail_cleanly(data: bytes) -> None:
    decodes_or_fails_cleanly(data)


@settings(max_examples=20)
@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__)
@given(data=st.data())
def test_every_prefix_of_every_kind_fails_cleanly(kind: type[Frame], data: st.DataObject) -> None:
    whole = encode(data.draw(structs(kind)))
    for end in range(len(whole)):
        decodes_or_fails_cleanly(whole[:end])


@pytest.mark.parametrize("opener", [b"\x91", b"\x81\x00"[:1], b"\xdc\x00\x01"])
def test_deep_nesting_is_a_bad_frame_not_a_recursion_error(opener: bytes) -> None:
    for header in (opener * 5000, b"\x92\x2a" + opener * 5000, b"\x93\x03\x01" + opener * 5000):
        with pytest.raises(DecodeFailure) as info:
            decode(header[:MAX_HEADER])
        assert info.value.code is Code.BAD_FRAME


def test_a_declared_length_past_the_end_is_a_bad_frame() -> None:
    for header in (b"\x93\x03\x01\xdb\xff\xff\xff\xff", b"\x93\x03\x01\xdd\xff\xff\xff\xff"):
        with pytest.raises(DecodeFailure) as info:
            decode(header)
        assert info.value.code is Code.BAD_FRAME


def test_a_send_out_of_its_bounds_is_a_bad_frame() -> None:
    """What a peer chooses freely in a Send is checked as it is decoded: seq 1..2^53-1,
    base, prev and ttl_ms 0..2^53-1, at most MAX_BATCH items."""
    edge = Send(0, [SendItem(MAX_EPOCH, "bob", MAX_EPOCH, False, MAX_EPOCH)])
    assert decode(encode(edge)) == edge
    wrong = [
        [3, 1, [[0, "bob"]]],
        [3, 1, [[-1, "bob"]]],
        [3, 1, [[MAX_EPOCH + 1, "bob"]]],
        [3, 1, [[2**63, "bob"]]],
        [3, -1, [[1, "bob"]]],
        [3, 1, [[1, "bob", -1]]],
        [3, 1, [[1, "bob", 0, False, -5]]],
        [3, 1, [[1, "bob", 0, False, MAX_EPOCH + 1]]],
        [3, 1, [[i + 1, "bob"] for i in range(MAX_BATCH + 1)]],
        [3, 1, [["1", "bob"]]],
        [3, 1, [[1.0, "bob"]]],
        [3, 1, [[True, "bob"]]],
        [3, 1, [[1, 7]]],
    ]
    for raw in wrong:
        with pytest.raises(DecodeFailure) as info:
            decode(msgspec.msgpack.encode(raw))
        assert info.value.code is Code.BAD_FRAME, raw


def test_the_send_bounds_are_the_codecs() -> None:
    hints = typing.get_type_hints(SendItem, include_extras=True)
    assert typing.get_args(hints["seq"])[1] == msgspec.Meta(ge=1, le=MAX_EPOCH)
    for field in ("prev", "ttl_ms"):
        assert typing.get_args(hints[field])[1] == msgspec.Meta(ge=0, le=MAX_EPOCH)
    items = typing.get_type_hints(Send, include_extras=True)["items"]
    assert typing.get_args(items)[1] == msgspec.Meta(max_length=MAX_BATCH)


def test_unknown_kind_is_told_from_garbage() -> None:
    with pytest.raises(DecodeFailure) as info:
        decode(msgspec.msgpack.encode([99, "from the future"]))
    assert info.value.code is Code.UNKNOWN_KIND
    with pytest.raises(DecodeFailure) as info:
        decode(b"\xc1\xc1")
    assert info.value.code is Code.BAD_FRAME


@pytest.mark.parametrize(
    "header",
    [b"\x92\x2a\xa0", b"\x92\xcc\xc8\xa0", b"\x92\xcd\x01\x00\x90",
     b"\x92\xcf" + b"\xff" * 8 + b"\xc3", b"\xdc\x00\x02\x2a\xa0",
     b"\xdd\x00\x00\x00\x01\xce\x00\x01\x00\x00"],
)  # fmt: skip
def test_an_unknown_tag_in_any_integer_or_array_form_is_an_unknown_kind(header: bytes) -> None:
    with pytest.raises(DecodeFailure) as info:
        decode(header)
    assert info.value.code is Code.UNKNOWN_KIND


@pytest.mark.parametrize(
    "header",
    [b"\x90", b"\x91", b"\x91\xcc", b"\x92\xff\xa0", b"\x92\xc3\xa0", b"\x81\x01\x02",
     b"\xdc\x00\x00", b"\xdc", b"\x92\x2a\xc1", b"\x92\x2a" + b"\x91" * 5000],
)  # fmt: skip
def test_whatever_is_not_an_array_led_by_an_unknown_tag_is_a_bad_frame(header: bytes) -> None:
    with pytest.raises(DecodeFailure) as info:
        decode(header)
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


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=30))
def test_packed_payloads_cut_back_into_what_was_packed(payloads: list[bytes]) -> None:
    sizes, body = packed(payloads)
    assert payloads_of(sizes, len(payloads), [b"header", body]) == payloads
    assert payloads_of([], len(payloads), [b"header", *payloads]) == payloads  # a part each


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=30), st.data())
def test_packed_parts_that_do_not_fit_their_header_are_refused(
    payloads: list[bytes], data: st.DataObject
) -> None:
    sizes, body = packed(payloads)
    n = len(payloads)
    wrong_sizes = data.draw(st.lists(st.integers(0, 50), max_size=31).filter(lambda s: s != sizes))
    if len(wrong_sizes) == n and sum(wrong_sizes) == len(body):
        return  # another valid cut of the same body
    assert payloads_of(wrong_sizes or [len(body) + 1], n, [b"h", body]) is None
    assert payloads_of(sizes, n, [b"h", body, b"extra"]) is None
    assert payloads_of(sizes, n + 1, [b"h", body]) is None
    assert payloads_of([], n, [b"h", *payloads, b"extra"]) is None


OLD = {  # headers as peers and routers from before packing wrote them (protocol.md, s. 16)
    "hello": "99 01 01 a5 61 6c 69 63 65 cf 00 12 34 56 78 9a bc de cd 20 00 c2 01 c2 00",
    "welcome": "9b 02 01 cf 00 00 01 9b 76 da a8 00 01 00 cc c8 ce 00 10 00 00 01 00 c2 cd 03 20",
    "send": "93 03 01 91 95 01 a3 62 6f 62 00 c3 00",
    "deliver": "93 06 02 91 97 01 a5 61 6c 69 63 65 cf 00 12 34 56 78 9a bc de 01 01 00 c3",
}


def test_headers_from_before_packing_decode_as_unpacked() -> None:
    hello, welcome, send, deliver = (decode(bytes.fromhex(h)) for h in OLD.values())
    assert isinstance(hello, Hello) and hello.packed is False  # takes a part a payload
    assert isinstance(welcome, Welcome) and welcome.packed is False  # takes a part a payload
    assert isinstance(send, Send) and send.sizes == []
    assert isinstance(deliver, Deliver) and deliver.sizes == []
