"""`python -m bench.fuzz --seconds N`: fuzz the header decoder and the router core's handling
of whole frames, for N seconds, with Hypothesis; report executions a second and any crash.

Inputs are drawn from the seed corpus in tests/fuzz_corpus/ (one header a file: a valid
frame of every kind, and the catalogue's codec cases; CI replays every file,
tests/unit/test_fuzz_corpus.py), mutated (bit flips, bytes set, cuts, insertions, deletions,
splices of two seeds), or random bytes. Two targets, each input through both:

- ``decode(header)`` returns a frame or raises DecodeFailure with BAD_FRAME, UNKNOWN_KIND or
  TOO_LARGE: nothing else;
- ``RouterCore.handle`` of ``[header, payloads...]`` from a welcomed peer (with 0 to 3
  payload parts, or as many as a decodable Send or Deliver has items) never raises; the
  same core takes a thousand inputs in a row, so what one leaves behind meets the next.

A crashing input is written to ``--crashes`` (a directory) and the run exits 1: add it to the
corpus once fixed. Why not atheris: msgspec's decoder is C, so coverage feedback stops at
its door (the corpus does not grow past the seeds); what is left in Python (dispatch) is
small, and Hypothesis is already a test dependency.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
import traceback
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    Code,
    DecodeFailure,
    Hello,
    RouterCore,
    decode,
    encode,
)
from zmqswarm.protocol.frames import Deliver, Send

CORPUS = Path(__file__).parents[1] / "tests" / "fuzz_corpus"
_ALLOWED = (Code.BAD_FRAME, Code.UNKNOWN_KIND, Code.TOO_LARGE)


def seeds(corpus: Path = CORPUS) -> list[bytes]:
    return [p.read_bytes() for p in sorted(corpus.glob("*.bin"))]


_MARKERS = (0x00, 0x7F, 0x80, 0x90, 0xC0, 0xC1, 0xCF, 0xD3, 0xDB, 0xDD, 0xDF, 0xFF)


def mutate(data: bytes, rnd: random.Random, others: list[bytes]) -> bytes:
    """``data`` after 1 to 6 of: a bit flipped, a byte set to a MessagePack marker, a cut,
    random bytes inserted, bytes deleted, the tail of another seed spliced in, a run doubled."""
    out = bytearray(data)
    for _ in range(rnd.randint(1, 6)):
        how = rnd.randrange(7)
        at = rnd.randint(0, len(out))
        if how == 0 and at < len(out):
            out[at] ^= 1 << rnd.randrange(8)
        elif how == 1 and at < len(out):
            out[at] = rnd.choice(_MARKERS)
        elif how == 2:
            del out[at:]
        elif how == 3:
            out[at:at] = rnd.randbytes(rnd.randint(1, 16))
        elif how == 4:
            del out[at : at + rnd.randint(1, 8)]
        elif how == 5:
            other = rnd.choice(others)
            out[at:] = other[rnd.randint(0, len(other)) :]
        else:
            out[at:at] = out[at : at + rnd.randint(1, 32)]
    return bytes(out)


def batch(rnd: random.Random, corpus: list[bytes], n: int) -> list[tuple[bytes, int]]:
    """``n`` inputs (header, payload parts: -1 for as many as its items): mostly mutated
    seeds, some seeds as they are, some random bytes."""
    out = []
    for _ in range(n):
        pick = rnd.random()
        if pick < 0.85:
            header = mutate(rnd.choice(corpus), rnd, corpus)
        elif pick < 0.95:
            header = rnd.choice(corpus)
        else:
            header = rnd.randbytes(rnd.randint(0, 256))
        out.append((header, rnd.randint(-1, 3)))
    return out


def check_decode(header: bytes) -> None:
    try:
        decode(header)
    except DecodeFailure as exc:
        if exc.code not in _ALLOWED:
            raise AssertionError(f"DecodeFailure with code {exc.code!r}") from exc


class Core:
    """A router core with two welcomed peers, ``fuzz/1`` (who sends the input) and ``r0/1``;
    made anew every ``fresh`` inputs, so that state a run built up is kept a while."""

    def __init__(self, fresh: int = 1) -> None:
        self.fresh, self.used, self.core = fresh, 0, self._new()
        self.now = 0.0

    @staticmethod
    def _new() -> RouterCore:
        core = RouterCore(epoch=1)
        core.handle(b"r0/1", [encode(Hello(PROTOCOL_VERSION, "r0", 1, 8))], 0.0)
        return core

    def handle(self, header: bytes, extra: int) -> None:
        """``header`` from a welcomed peer with ``extra`` payload parts (-1: as many as a
        decodable Send or Deliver has items); the core answers, and never raises."""
        self.used += 1
        if self.used > self.fresh:
            self.core, self.used, self.now = self._new(), 1, 0.0
        core = self.core
        self.now += 0.01
        core.handle(b"fuzz/1", [encode(Hello(PROTOCOL_VERSION, "fuzz", 1, 8))], self.now)
        payloads = [b"payload"] * max(extra, 0)
        if extra < 0:
            try:
                frame = decode(header)
            except DecodeFailure:
                frame = None
            if isinstance(frame, Send | Deliver):  # packed: one part, as its sizes cut it
                body = sum(frame.sizes)
                whole = b"p" * body if body <= 1 << 16 else b"p"  # else a miscut: refused
                payloads = [whole] if frame.sizes else [b"payload"] * len(frame.items)
        core.handle(b"fuzz/1", [header, *payloads], self.now)
        core.take_output(self.now)
        core.tick(self.now)
        core.take_logs()


def check_core(header: bytes, extra: int) -> None:
    Core().handle(header, extra)


def check(header: bytes, extra: int) -> None:
    check_decode(header)
    check_core(header, extra)


def write_crash(where: Path, header: bytes) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    path = where / f"crash-{hashlib.sha256(header).hexdigest()[:16]}.bin"
    path.write_bytes(header)
    return path


class _TimeUp(Exception):
    pass


def run(
    seconds: float, corpus: list[bytes], crashes: Path, per: int = 256
) -> tuple[int, list[Path]]:
    """Fuzz for ``seconds``: (executions, crash files written). Hypothesis draws each batch's
    seed (a batch replays from it); the ``per`` inputs of a batch are
    made by plain Python, since a Hypothesis draw per byte costs a hundred times the check."""
    end = time.monotonic() + seconds
    count = 0
    found: list[Path] = []
    core = Core(fresh=1000)

    @settings(
        max_examples=10**9,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.integers(0, 2**64 - 1))
    def one(seed: int) -> None:
        nonlocal count, core
        if time.monotonic() > end:
            raise _TimeUp
        for header, extra in batch(random.Random(seed), corpus, per):
            count += 1
            try:
                check_decode(header)
                core.handle(header, extra)
            except Exception:
                found.append(write_crash(crashes, header))
                print(f"CRASH on {header[:64]!r} ({len(header)} bytes):", file=sys.stderr)
                traceback.print_exc()
                core = Core(fresh=1000)

    while time.monotonic() < end:
        try:
            one()
        except _TimeUp:
            break
    return count, found


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--crashes", type=Path, default=Path("bench/results/fuzz-crashes"))
    args = ap.parse_args()
    corpus = seeds()
    if not corpus:
        sys.exit(f"no seeds in {CORPUS}")
    start = time.monotonic()
    count, found = run(args.seconds, corpus, args.crashes)
    took = time.monotonic() - start
    print(f"seeds: {len(corpus)} from {CORPUS}")
    print(f"executions: {count} in {took:.1f} s: {count / took:,.0f} exec/s (decode and core)")
    print(f"crashes: {len(found)}" + "".join(f"\n  {p}" for p in found))
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
