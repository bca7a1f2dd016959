"""The fuzzer's seed corpus (tests/fuzz_corpus/), replayed as a normal test: every header
decodes or fails with a code a Nack may carry, and the router core handles it (with no
payload part, with one, and with as many as its items) without raising."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fuzz import CORPUS, check, seeds

FILES = sorted(CORPUS.glob("*.bin"))


def test_the_corpus_has_a_valid_frame_of_every_kind_and_the_hostile_cases() -> None:
    names = {p.stem for p in FILES}
    assert len([n for n in names if n.startswith("valid-")]) == 20
    assert {"hostile-deep-arrays", "hostile-huge-str32", "hostile-seq-2p63"} <= names
    assert len(seeds()) == len(FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_seed_is_handled(path: Path) -> None:
    header = path.read_bytes()
    for extra in (-1, 0, 1):
        check(header, extra)
