"""Doorbell: the wake-up the sync client's threads ring each other with."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest

from zmqswarm.client.doorbell import Doorbell, ring_each


@pytest.fixture(params=["eventfd", "pipe"])
def new_bell(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Doorbell]:
    """Both kinds: an eventfd where Linux has one, the pipe every other system gets."""
    if request.param == "pipe":
        monkeypatch.delattr(os, "eventfd", raising=False)
    elif not hasattr(os, "eventfd"):
        pytest.skip("no eventfd on this system")
    return Doorbell


def test_an_unrung_bell_waits_out_its_timeout(new_bell: Callable[[], Doorbell]) -> None:
    bell = new_bell()
    try:
        start = time.monotonic()
        assert bell.wait(20) is False
        assert time.monotonic() - start >= 0.015
    finally:
        bell.close()


def test_rings_coalesce_and_waiting_clears_them(new_bell: Callable[[], Doorbell]) -> None:
    bell = new_bell()
    try:
        for _ in range(3):
            bell.ring()
        assert bell.wait(0) is True  # one wait answers every ring so far
        assert bell.wait(0) is False  # and leaves the bell silent
        bell.ring()
        bell.clear()
        assert bell.wait(0) is False
    finally:
        bell.close()


def test_a_ring_from_another_thread_wakes_the_sleeper(new_bell: Callable[[], Doorbell]) -> None:
    bell = new_bell()
    try:
        woke: list[bool] = []
        sleeper = threading.Thread(target=lambda: woke.append(bell.wait(10_000)))
        sleeper.start()
        bell.ring()  # before or after the sleeper polls: either way it is answered
        sleeper.join(5)
        assert woke == [True]
    finally:
        bell.close()


def test_closing_wakes_a_sleeper_and_later_rings_are_harmless(
    new_bell: Callable[[], Doorbell],
) -> None:
    bell = new_bell()
    sleeper_done = threading.Event()

    def sleep_on_it() -> None:
        bell.wait(10_000)
        sleeper_done.set()

    sleeper = threading.Thread(target=sleep_on_it)
    sleeper.start()
    bell.close()  # before or while the sleeper polls: a pending ring or a closed descriptor
    bell.ring()  # a caller racing close(): no error, no write to a reused descriptor
    bell.clear()
    assert sleeper_done.wait(2), "a sleeper outlived the close of its bell"
    sleeper.join(1)


def test_a_ringer_never_blocks_even_when_no_one_listens(new_bell: Callable[[], Doorbell]) -> None:
    bell = new_bell()
    try:
        start = time.monotonic()
        for _ in range(10_000):  # 80 kB of rings: more than a pipe holds
            bell.ring()
        assert time.monotonic() - start < 5
        assert bell.wait(0) is True
        for _ in range(30):  # a pipe gives up its bytes 4 kB a read: silent within 20
            if not bell.wait(0):
                break
        else:
            raise AssertionError("the bell kept ringing after its rings were read")
    finally:
        bell.close()


class _Rejoining(Doorbell):
    """A sleeper that wakes at once, finds nothing and waits again, as a recv() caller does
    while the I/O thread is still ringing: its ring puts it back into the waiting set."""

    def __init__(self, waiting: set[Doorbell], rung: list[Doorbell]) -> None:
        super().__init__()
        self.waiting, self.rung = waiting, rung

    def ring(self) -> None:
        self.rung.append(self)
        self.waiting.add(self)


@pytest.mark.timeout(5)  # popping until the set is empty would never end here
def test_ring_each_rings_every_sleeper_once_while_they_rejoin() -> None:
    waiting: set[Doorbell] = set()
    rung: list[Doorbell] = []
    bells = [_Rejoining(waiting, rung) for _ in range(64)]
    try:
        waiting.update(bells)
        ring_each(waiting)
        assert sorted(map(id, rung)) == sorted(map(id, bells))  # each once, none missed
        assert waiting == set(bells)  # and each is back, waiting for the next ring
    finally:
        for bell in bells:
            bell.close()
