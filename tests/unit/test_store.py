"""The spool and the recipient state: their records (protocol/resume_log.py) and their files
(client/store.py). A journal must read back what was written, drop only an append cut short
at its end, refuse damage anywhere else, and compact to what is still unsettled."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zmqswarm.client import store
from zmqswarm.client.store import Journal
from zmqswarm.errors import StoreError, StoreInUseError
from zmqswarm.protocol import resume_log as journal
from zmqswarm.protocol.resume_log import Done, Head, Msg, Seen, SeenLog, SpoolLog, frame, scan

names = st.text("abcxyz", min_size=1, max_size=5)
ints = st.integers(1, 2**53 - 1)
spans = st.lists(ints, max_size=6).map(lambda x: x[: len(x) // 2 * 2])
records = st.one_of(
    st.builds(Head, st.just("spool"), names, ints, ints, ints),
    st.builds(Msg, ints, names, st.booleans(), ints, st.binary(max_size=300)),
    st.builds(Done, spans),
    st.builds(Seen, names, ints, ints, st.booleans()),
)


@given(st.lists(records, min_size=1, max_size=20), st.data())
def test_a_journal_reads_back_whole_and_a_cut_last_append_is_dropped(
    written: list[journal.Record], data: st.DataObject
) -> None:
    chunks = [frame(r) for r in written]
    whole = b"".join(chunks)
    starts = [sum(map(len, chunks[:i])) for i in range(len(chunks))]
    assert scan(whole) == (written, starts, len(whole))
    last = starts[-1]
    cut = data.draw(st.integers(last, len(whole) - 1), label="cut at")
    assert scan(whole[:cut]) == (written[:-1], starts[:-1], last)  # killed mid-append
    zeros = data.draw(st.integers(1, 5000), label="zeros")
    got = scan(whole[:cut] + bytes(zeros))  # blocks a crashed machine never wrote
    assert got == (written[:-1], starts[:-1], last) or got.records == written  # (its own end)


@given(st.lists(records, min_size=2, max_size=10), st.data())
def test_damage_before_the_last_record_is_refused_not_guessed_around(
    written: list[journal.Record], data: st.DataObject
) -> None:
    whole = bytearray(b"".join(frame(r) for r in written))
    before_last = len(whole) - len(frame(written[-1]))
    at = data.draw(st.integers(0, before_last - 1), label="flipped byte")
    whole[at] ^= 1 << data.draw(st.integers(0, 7), label="bit")
    with pytest.raises(ValueError, match="damaged|record at byte"):
        scan(bytes(whole))


EMPTY = scan(b"")


def compacted(log: SpoolLog | SeenLog, raw: bytes) -> bytes:
    """What Journal._compact makes of journal ``raw``."""
    head, ranges = log.compaction()
    out = b"".join(head) + b"".join(raw[at : at + size] for at, size in ranges)
    log.moved(len(b"".join(head)))
    return out


@settings(max_examples=200)
@given(st.lists(st.tuples(st.integers(1, 5), st.sets(st.integers(0, 40))), max_size=25))
def test_a_spool_reopens_to_the_messages_not_yet_settled(
    steps: list[tuple[int, set[int]]],
) -> None:
    """Batches of sends, each followed by settling some of the seqs used so far: reopened
    (and reopened compacted), the spool holds exactly what is unsettled, and seqs go on."""
    log = SpoolLog(EMPTY, "alice", epoch=7)
    raw = b"".join(log.opening())
    live: dict[int, bytes] = {}
    for i, (count, settle) in enumerate(steps):
        seq = log.next_seq
        payloads = [f"m{seq + i}".encode() for i in range(count)]
        raw += b"".join(log.add(seq, "bob", payloads, False, 0, len(raw)))
        live.update(zip(range(seq, seq + count), payloads, strict=True))
        done = sorted(s for s in settle if s < log.next_seq)
        if done:
            raw += log.settle(done)
            for s in done:
                live.pop(s, None)
        if i % 4 == 3:
            raw = compacted(log, raw)  # and it goes on from there
    for image in (raw, compacted(log, raw)):
        again = SpoolLog(scan(image), "alice", epoch=99)
        assert again.epoch == 7
        assert {s: m.payload for s, m in again.unsent.items()} == live
        assert again.next_seq == log.next_seq
        assert again.hellos >= journal.HELLO_BLOCK  # attempts go on above the last process's


def test_a_spool_belongs_to_one_name() -> None:
    raw = b"".join(SpoolLog(EMPTY, "alice", 1).opening())
    with pytest.raises(ValueError, match="belongs to 'alice', not 'bob'"):
        SpoolLog(scan(raw), "bob", 1)
    with pytest.raises(ValueError, match="is a spool, not a state"):
        SeenLog(scan(raw), "alice")


@settings(max_examples=300)
@given(
    st.lists(st.lists(st.integers(1, 4), min_size=1, max_size=12), min_size=1, max_size=3),
    st.data(),
)
def test_a_state_knows_exactly_what_was_acked(gaps: list[list[int]], data: st.DataObject) -> None:
    """Streams deliver rising seqs (with gaps: a stream also sends to others); the
    application acks some of them, in any order. Reopened, and reopened compacted, a seq of a
    stream is a duplicate exactly when it was acked."""
    handed = [(f"s{i}", 1, seq) for i, g in enumerate(gaps) for seq in _running(g)]
    log = SeenLog(EMPTY, "bob")
    out = [*log.opening()]
    for key in handed:
        log.handed(*key)
    acks = data.draw(st.permutations(handed), label="ack order")
    acks = acks[: data.draw(st.integers(0, len(acks)), label="acked")]
    out += [log.acked(*key) for key in acks]
    raw = b"".join(out)
    for image in (raw, compacted(log, raw)):
        again = SeenLog(scan(image), "bob")
        for sender, epoch, seq in handed:
            dup = seq <= again.high.get((sender, epoch), 0) or seq in again.above.get(
                (sender, epoch), ()
            )
            assert dup == ((sender, epoch, seq) in acks), (sender, seq)


def _running(gaps: list[int]) -> list[int]:
    out, at = [], 0
    for g in gaps:
        at += g
        out.append(at)
    return out


# -- the files ----------------------------------------------------------------------------


def open_spool(path: Path, name: str = "alice", sync: float = 0.05) -> Journal[SpoolLog]:
    return Journal.open(path, lambda r: SpoolLog(r, name, epoch=5), sync)


def test_a_spool_file_reopens_and_a_live_holder_is_named(tmp_path: Path) -> None:
    path = tmp_path / "alice.spool"
    spool = open_spool(path)
    spool.append(spool.log.add(1, "bob", [b"one", b"two", b"three"], True, 0, spool.size), 1.0)
    spool.append([spool.log.settle([2])], 1.0)
    with pytest.raises(StoreInUseError) as held:
        open_spool(path)
    assert held.value.pid == os.getpid() and str(path) in str(held.value)
    spool.close()
    again = open_spool(path)
    assert [(m.seq, m.payload, m.notify) for m in again.log.unsent.values()] == [
        (1, b"one", True),
        (3, b"three", True),
    ]
    assert again.log.next_seq == 4
    again.close()


def test_another_process_holding_the_spool_is_named_by_its_pid(tmp_path: Path) -> None:
    path = tmp_path / "alice.spool"
    code = (
        "import sys; from zmqswarm.client.store import Journal;"
        "from zmqswarm.protocol.resume_log import SpoolLog;"
        f"j = Journal.open({str(path)!r}, lambda r: SpoolLog(r, 'alice', 5), 0.05);"
        "print('HELD', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "HELD"
        with pytest.raises(StoreInUseError, match=f"held by process {holder.pid}"):
            open_spool(path)
    finally:
        holder.kill()
        holder.wait(10)
        for stream in (holder.stdin, holder.stdout):
            if stream:
                stream.close()
    open_spool(path).close()  # the lock went with its holder


def test_an_append_cut_short_on_disk_is_dropped_and_writing_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "alice.spool"
    spool = open_spool(path)
    spool.append(spool.log.add(1, "bob", [b"a" * 100, b"b" * 100], False, 0, spool.size), 1.0)
    spool.close()
    whole = path.stat().st_size
    os.truncate(path, whole - 50)  # the second record, cut by a kill mid-write
    spool = open_spool(path)
    assert list(spool.log.unsent) == [1]
    assert scan(path.read_bytes()).end == path.stat().st_size  # the cut record is gone
    spool.append(spool.log.add(2, "bob", [b"c"], False, 0, spool.size), 1.0)
    spool.close()
    spool = open_spool(path)
    assert [m.payload for m in spool.log.unsent.values()] == [b"a" * 100, b"c"]
    spool.close()


def test_a_damaged_spool_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "alice.spool"
    spool = open_spool(path)
    spool.append(spool.log.add(1, "bob", [b"a" * 100, b"b" * 100], False, 0, spool.size), 1.0)
    spool.close()
    raw = bytearray(path.read_bytes())
    raw[len(frame(spool.log.head())) + 20] ^= 0xFF  # inside the first message
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=f"{path}: damaged record at byte"):
        open_spool(path)
    with pytest.raises(StoreError, match="belongs to 'alice', not 'carol'"):
        path.write_bytes(b"".join(SpoolLog(EMPTY, "alice", 1).opening()))
        open_spool(path, "carol")


def test_the_spool_stays_as_small_as_what_is_unsettled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "COMPACT_AT", 64 << 10)
    path = tmp_path / "alice.spool"
    spool = open_spool(path)
    payload = b"x" * 200
    sizes = []
    for seq in range(1, 5001):
        spool.append(spool.log.add(seq, "bob", [payload], False, 0, spool.size), 1.0)
        if seq > 10:  # ten in flight at any time: receipts trail the sends
            spool.append([spool.log.settle([seq - 10])], 1.0)
        sizes.append(path.stat().st_size)
    assert max(sizes) < 2 * (64 << 10) + 1024, max(sizes)
    spool.close()
    spool = open_spool(path)
    assert list(spool.log.unsent) == list(range(4991, 5001))
    assert spool.log.next_seq == 5001
    spool.close()
    assert not (tmp_path / "alice.spool.tmp").exists()


def test_a_state_file_compacts_to_one_record_a_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "COMPACT_AT", 16 << 10)
    path = tmp_path / "bob.state"
    state = Journal.open(path, lambda r: SeenLog(r, "bob"), 0.05)
    for seq in range(1, 3001):
        state.append([state.log.acked("alice", 9, seq)], 1.0)
    assert path.stat().st_size < 2 * (16 << 10)
    state.close()
    state = Journal.open(path, lambda r: SeenLog(r, "bob"), 0.05)
    assert state.log.high == {("alice", 9): 3000}
    state.close()


def test_writes_are_fsynced_at_most_fsync_every_after(tmp_path: Path) -> None:
    spool = open_spool(tmp_path / "alice.spool", sync=0.05)
    spool.sync()
    assert spool.sync_due() == float("inf")
    spool.append(spool.log.add(1, "bob", [b"a"], False, 0, spool.size), 10.0)
    assert spool.sync_due() == pytest.approx(10.05)
    spool.append(
        spool.log.add(2, "bob", [b"b"], False, 0, spool.size), 10.06
    )  # a burst syncs as it goes
    assert spool.sync_due() == float("inf")
    spool.close()
    every = open_spool(tmp_path / "alice.spool", sync=0)
    every.append(every.log.add(3, "bob", [b"c"], False, 0, every.size), 20.0)
    assert every.sync_due() == float("inf")  # fsynced before append() returned
    every.close()


@pytest.mark.timeout(10)
def test_scanning_is_linear_in_the_journal() -> None:
    """A 10 MB journal of 200,000 records scans in well under a second (a per-record look
    at the rest of the file once made it minutes)."""
    data = frame(Msg(1, "bob", False, 0, b"x" * 16)) * 200_000
    found = scan(data)
    assert (len(found.records), found.end) == (200_000, len(data))
