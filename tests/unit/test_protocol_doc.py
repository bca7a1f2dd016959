"""docs/protocol.md is the specification: its tables and example bytes must match the code.

Field tables (names, order, types, defaults) are compared with the frame Structs; the worked
example's bytes are decoded with the real decoder and must be exactly what the real encoder
writes; the code table, the counters, the limits and the heartbeat settings are compared with
the values the router and the clients use.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

import msgspec
import pytest

from zmqswarm.protocol import ClientOptions, RouterOptions
from zmqswarm.protocol.codec import (
    MAX_BATCH,
    MAX_EPOCH,
    MAX_HEADER,
    MAX_NAME,
    AnyFrame,
    decode,
    encode,
)
from zmqswarm.protocol.effects import STATS
from zmqswarm.protocol.frames import Code, Frame
from zmqswarm.transport import routing_id

DOC = Path(__file__).parents[2] / "docs" / "protocol.md"
TEXT = DOC.read_text()

KINDS: dict[str, type[Frame]] = {k.__name__: k for k in typing.get_args(AnyFrame)}


# -- reading the document --------------------------------------------------------------------


def section(number: int) -> str:
    """The body of ``## N. Title``, up to the next ``## `` heading."""
    match = re.search(rf"^## {number}\. .*?$(.*?)(?=^## |\Z)", TEXT, re.M | re.S)
    assert match, f"no section {number} in {DOC.name}"
    return match.group(1)


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text``, cells stripped."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # the header row and the |---| row


def subsections(text: str) -> dict[str, tuple[int | None, str]]:
    """``### Name`` or ``### Name, tag N`` -> (tag, body)."""
    found: dict[str, tuple[int | None, str]] = {}
    for match in re.finditer(r"^### (\w+)(?:, tag (\d+))?$(.*?)(?=^### |\Z)", text, re.M | re.S):
        name, tag, body = match.groups()
        assert name not in found, f"{name} documented twice"
        found[name] = (int(tag) if tag else None, body)
    return found


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


# -- what the code says ----------------------------------------------------------------------


def type_name(tp: object) -> str:
    """A field's type in the document's notation: int, str, bool, [T], [int, str], {str: int}.
    Bounds (``Annotated[int, msgspec.Meta(...)]``) are the Limits table's, not the type's."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in (int, str, bool):
        return tp.__name__
    if origin is list:
        return f"[{type_name(args[0])}]"
    if origin is tuple:
        return "[" + ", ".join(type_name(a) for a in args) + "]"
    if origin is dict:
        return f"{{{type_name(args[0])}: {type_name(args[1])}}}"
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp.__name__
    raise AssertionError(f"no notation for {tp!r}")


def default_text(field: msgspec.structs.FieldInfo) -> str:
    if field.default_factory is not msgspec.NODEFAULT:
        return json.dumps(field.default_factory(), separators=(", ", ": "))
    if field.default is msgspec.NODEFAULT:
        return "required"
    return json.dumps(field.default)


def item_structs() -> dict[str, type[msgspec.Struct]]:
    """The Structs that frames carry inside them (SendItem, DeliverItem...)."""
    found: dict[str, type[msgspec.Struct]] = {}

    def walk(tp: object) -> None:
        for arg in typing.get_args(tp):
            walk(arg)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct) and tp.__name__ not in found:
            found[tp.__name__] = tp
            for field in msgspec.structs.fields(tp):
                walk(field.type)

    for kind in KINDS.values():
        for field in msgspec.structs.fields(kind):
            walk(field.type)
    return found


# -- the field tables ------------------------------------------------------------------------

DOCUMENTED = subsections(section(4))
ITEMS = item_structs()


def test_every_kind_and_item_type_is_documented_once() -> None:
    assert set(DOCUMENTED) == set(KINDS) | set(ITEMS)


@pytest.mark.parametrize("name", sorted(set(KINDS) | set(ITEMS)))
def test_field_table_matches_the_struct(name: str) -> None:
    tag, body = DOCUMENTED[name]
    struct: type[msgspec.Struct] = KINDS.get(name) or ITEMS[name]
    fields = msgspec.structs.fields(struct)
    is_frame = name in KINDS
    assert tag == (struct.__struct_config__.tag if is_frame else None)
    first = 1 if is_frame else 0  # element 0 of a header is the tag
    expected = [
        [str(first + i), f.name, type_name(f.type), default_text(f)] for i, f in enumerate(fields)
    ]
    rows = [row[:4] for row in table_rows(body)]
    assert rows == expected
    if not fields:
        assert f"the header is `[{tag}]`" in body


def test_the_summary_table_lists_every_kind_with_its_tag_and_parts() -> None:
    rows = table_rows(section(4))
    listed = {row[1]: (int(row[0]), row[3]) for row in rows}
    # One payload part per item follows the header (or, packed, one for all of them: the
    # kinds with a ``sizes`` field); a TopicValue's one payload.
    batches = {"Send", "Deliver", "DeadList", "Publish", "TopicSnapshot"}
    parts = dict.fromkeys(batches, "1 + n") | {"TopicValue": "1 + 1"}
    packs = {name for name, kind in KINDS.items() if "sizes" in kind.__struct_fields__}
    parts |= dict.fromkeys(packs, "1 + n, or 2 packed")
    assert listed == {
        name: (kind.__struct_config__.tag, parts.get(name, "1")) for name, kind in KINDS.items()
    }


# -- the example bytes -----------------------------------------------------------------------


def examples() -> list[tuple[str, str, dict[str, list[bytes]]]]:
    """(kind, arguments, {"part": [...], "short": [...]}) for each block of section 16."""
    found = []
    for block in re.findall(r"```text\n(.*?)```", section(16), re.S):
        first, *lines = block.strip().splitlines()
        match = re.fullmatch(r"\w+ → \w+\s+(\w+)\((.*)\)", first)
        assert match, f"not an example heading: {first!r}"
        parts: dict[str, list[bytes]] = {"part": [], "short": []}
        for n, line in enumerate(lines, start=1):
            label, data = re.fullmatch(r"(part \d+|short)\s+([0-9a-f ]+)", line).groups()  # type: ignore[union-attr]
            if label.startswith("part"):
                assert label == f"part {n}"
                parts["part"].append(hexbytes(data))
            else:
                parts["short"].append(hexbytes(data))
        found.append((match.group(1), match.group(2), parts))
    return found


EXAMPLES = examples()


def test_the_worked_example_shows_the_main_kinds() -> None:
    shown = {kind for kind, _, _ in EXAMPLES}
    assert {"Hello", "Welcome", "Send", "Receipt", "Deliver", "Ack", "Delivered"} <= shown
    assert {"Heartbeat", "Nack"} <= shown


@pytest.mark.parametrize(("kind", "args", "parts"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_decodes_to_what_it_says_and_is_what_the_encoder_writes(
    kind: str, args: str, parts: dict[str, list[bytes]]
) -> None:
    header, *payloads = parts["part"]
    frame = decode(header)
    assert type(frame).__name__ == kind
    # Kind(a=1, b="x", c=[...]) -> {"a": 1, ...}: the values are JSON.
    said = json.loads("{" + re.sub(r"(?:^|(?<=, ))(\w+)=", r'"\1": ', args) + "}")
    names = [f.name for f in msgspec.structs.fields(type(frame))]
    assert list(said) == names  # every field, in order
    assert said == {name: msgspec.to_builtins(getattr(frame, name)) for name in names}
    assert msgspec.msgpack.decode(header) == [type(frame).__struct_config__.tag, *said.values()]
    assert encode(frame) == header  # the canonical form, byte for byte
    items = getattr(frame, "items", None)
    assert len(payloads) == (len(items) if items is not None else 0)
    for short in parts["short"]:  # a shorter valid form decodes to the same frame
        assert short != header and decode(short) == frame


def test_the_framing_example_of_an_ack() -> None:
    match = re.search(
        r"`Ack\(session=2, upto=10\)` is\s+canonically `([0-9a-f ]+)`, and `([0-9a-f ]+)`", TEXT
    )
    assert match
    canonical, short = (hexbytes(g) for g in match.groups())
    assert encode(decode(short)) == canonical and decode(canonical) == decode(short)


def test_the_routing_ids_in_the_example_are_the_ones_a_peer_makes() -> None:
    pairs = re.findall(r"(\w+) \(epoch 0x([0-9a-f]+), routing id `([^`]+)`\)", section(16))
    assert len(pairs) == 2
    for name, epoch, rid in pairs:
        assert routing_id(name, int(epoch, 16)).decode() == rid
    assert routing_id("alice", 0x123456789ABCDE) == b"alice/123456789abcde"  # section 2's


# -- codes, counters, limits, heartbeats -----------------------------------------------------


def test_the_code_table_matches_the_codes() -> None:
    rows = table_rows(section(14))
    assert [(int(r[0]), r[1]) for r in rows] == [(int(c), c.name) for c in Code]
    for row in rows:
        assert row[3] == ("yes" if Code(int(row[0])).retriable else "no"), row[1]


def test_the_counters_are_the_routers() -> None:
    body = section(15)
    assert [row[0] for row in table_rows(body)] == list(STATS)
    assert "`nack_`" in body


def test_the_limits_are_the_codecs() -> None:
    limits = {row[0]: row[1] for row in table_rows(section(3).split("**Limits.**")[1])}
    assert limits["header part"] == f"{MAX_HEADER} bytes"
    assert limits["items in one Send, Deliver or DeadList"] == str(MAX_BATCH)
    assert limits["name"] == rf"{MAX_NAME} characters, `[A-Za-z0-9][A-Za-z0-9._:@/+-]*`"
    assert limits["epoch"] == f"1 to {MAX_EPOCH}"
    assert f"({RouterOptions().max_payload} by default)" in limits["payload"]


def test_the_heartbeat_settings_are_the_clients_and_the_routers() -> None:
    options = {row[0]: row[1] for row in table_rows(section(2))}
    for opts in (ClientOptions(), RouterOptions()):
        assert options["`ZMQ_HEARTBEAT_IVL`"] == f"{opts.heartbeat * 1000:.0f} ms"
        assert options["`ZMQ_HEARTBEAT_TIMEOUT`"] == f"{opts.heartbeat_timeout * 1000:.0f} ms"
        assert options["`ZMQ_HEARTBEAT_TTL`"] == f"{opts.heartbeat_timeout * 1000:.0f} ms"


def test_the_document_is_the_spec_and_names_no_source_file() -> None:
    assert not re.search(r"\w+\.py\b|zmqswarm/|tests/", TEXT)
