"""Durability fault tests (the router journal): real `zs router` processes killed and
restarted under traffic, real sender and recipient processes (peer.py ``feed`` and ``take``),
and every run judged by tests/checker.py from what the senders and recipients wrote down.
Every kill -9 is also a power cut: the journal's WAL is cut back to its last fsync.

They need a router that keeps what it receipted: `zs router --data-dir DIR`. Until `zs router
--help` lists ``--data-dir`` they skip. ``ZS_DURABILITY=force`` runs them against a router
without a journal (``--no-journal``, or a router that has none), where they must fail, with the
checker naming the receipted messages lost.
``ZS_SEED`` replays a run's fault schedule (each run prints its seed); ``ZS_BOUNCER_N`` sets
the messages per sender of the bouncer (the issue's figure is 10,000).
"""

from __future__ import annotations

import functools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import pytest

from zmqswarm.observe import list_peers

from ..checker import Outcome, Report, Sent, check, read_history, read_log
from ..helpers import Procs, answers, poll_until, power_loss, wait_for

MS = 1_000_000  # ns


@functools.cache
def router_help() -> str:
    return subprocess.run(
        [sys.executable, "-m", "zmqswarm.cli", "router", "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout


@pytest.fixture
def journal(tmp_path: Path) -> list[str]:
    """The router's arguments that keep what it receipted, in the test's own directory; with
    ``ZS_DURABILITY=force`` the arguments of a router that does not (the test must fail)."""
    flags = router_help()
    if os.environ.get("ZS_DURABILITY") == "force":
        # A router without a journal: the checker must name the receipted messages it lost.
        return ["--no-journal"] if "--no-journal" in flags else []
    if "--data-dir" in flags:
        return ["--data-dir", str(tmp_path / "data")]
    pytest.skip(
        "zs router has no --data-dir (the router journal) yet;"
        " ZS_DURABILITY=force runs this without it, to see the checker fail"
    )


@pytest.fixture
def seed() -> int:
    value = int(os.environ.get("ZS_SEED") or random.randrange(1 << 32))
    print(f"\nZS_SEED={value}")  # noqa: T201 - replays this run's faults
    return value


class Run:
    """A router at ``procs.url`` with the journal's arguments, its senders and recipients,
    their files, and the router's restarts."""

    def __init__(self, procs: Procs, tmp: Path, router_args: list[str]) -> None:
        self.procs, self.tmp, self.args = procs, tmp, router_args
        self.done = tmp / "recipients.done"
        self.senders: dict[str, subprocess.Popen[str]] = {}
        self.recipients: dict[str, subprocess.Popen[str]] = {}
        self.router = self.start_router()
        self.restarts: list[Restart] = []

    def start_router(self) -> subprocess.Popen[str]:
        router = self.procs.router(*self.args, env={"ZS_RECORD_FSYNC": "1"})
        wait_for(lambda: answers(self.procs.url) or router.poll() is not None, 10, "a router")
        assert router.poll() is None, router.stderr.read() if router.stderr else router
        return router

    def restart(self, sig: int, down: float = 0.0) -> None:
        """Stop the router with ``sig``, leave it down ``down`` s, start it again."""
        stopped = time.monotonic_ns()
        self.router.send_signal(sig)
        self.router.wait(10)  # SIGTERM: after its drain (2 s at most)
        if sig == signal.SIGKILL and "--data-dir" in self.args:  # and the power went too
            power_loss(Path(self.args[self.args.index("--data-dir") + 1]))
        time.sleep(down)  # the fault: no router for that long, not a sync
        started = time.monotonic_ns()
        self.router = self.start_router()
        self.restarts.append(Restart(sig, stopped, started))

    def recipient(self, name: str, *options: str) -> None:
        self.recipients[name] = self.procs.peer(
            "take", name, self.procs.url, str(self.log(name)), "--until", str(self.done),
            "--idle", "600", *options,
        )  # fmt: skip

    def sender(self, name: str, count: int, to: list[str], rate: float) -> None:
        self.senders[name] = self.procs.peer(
            "feed", name, self.procs.url, str(count), ",".join(to), str(self.history(name)),
            "--rate", str(rate), "--settle", "60",
        )  # fmt: skip

    def history(self, name: str) -> Path:
        return self.tmp / f"{name}.history"

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def histories(self) -> list[list[Sent]]:
        return [read_history(self.history(name)) for name in self.senders]

    def report(self, recipients: list[str]) -> Report:
        return check(self.histories(), {r: read_log(self.log(r)) for r in recipients})

    def receipted(self) -> int:
        """Receipts the senders have seen (counted, not parsed: a cheap poll)."""
        return sum(_count(self.history(name), b"\nok ") for name in self.senders)

    def handed(self, recipients: list[str]) -> int:
        """Hand-overs the recipients have logged, duplicates included."""
        return sum(_count(self.log(name), b"\n") for name in recipients)

    def drained(self, recipients: list[str]) -> bool:
        """The senders are done and as much was handed over as was receipted: the checker
        then says whether it was the right mail."""
        return self.senders_done() and self.handed(recipients) >= self.receipted()

    def senders_done(self) -> bool:
        return all(p.poll() is not None for p in self.senders.values())

    def sender_lines(self) -> dict[str, str]:
        """Each sender's last line (DONE, UNSENT n), once every sender has exited."""
        return {
            name: (p.communicate(timeout=10)[0].strip().splitlines() or ["(nothing)"])[-1]
            for name, p in self.senders.items()
        }

    def stop_recipients(self) -> None:
        self.done.touch()
        for proc in self.recipients.values():
            proc.wait(10)


def _count(path: Path, what: bytes) -> int:
    return path.read_bytes().count(what) if path.exists() else 0


class Restart(NamedTuple):
    signal: int
    stopped_ns: int  # the signal sent
    started_ns: int  # the new router spawned


def first_receipt_after(restart: Restart, histories: list[list[Sent]]) -> float:
    """Seconds from the new router's spawn to the first receipt of a message sent after the
    old one was killed: a receipt that only the new router can have given."""
    times = [
        s.settled_ns
        for h in histories
        for s in h
        if s.outcome is Outcome.RECEIPTED and s.sent_ns > restart.stopped_ns
    ]
    return (min(times) - restart.started_ns) / 1e9 if times else float("inf")


def mailboxes(url: str) -> dict[str, tuple[int, int]]:
    """(queued, inflight) for every name whose mailbox holds anything."""
    return {p.name: (p.queued, p.inflight) for p in list_peers(url) if p.queued or p.inflight}


def settled_mailboxes(url: str) -> dict[str, tuple[int, int]]:
    """``mailboxes`` once empty, or as they are after 5 s: the last acks may be on their way."""
    poll_until(lambda: not mailboxes(url), 5)
    return mailboxes(url)


def still_there(left: dict[str, tuple[int, int]]) -> str:
    """What a report's "lost" means when time ran out: mail still at the router (queued,
    inflight) is late, not (yet) lost."""
    return f"; still at the router (queued, inflight): {left}" if left else ""


# -- a. the router bouncer ----------------------------------------------------------------

SENDERS = 10
RECIPIENTS = 5
SLOW = 2  # of the recipients, take 4/5 of what comes: their mail waits at the router
PER_SENDER = int(os.environ.get("ZS_BOUNCER_N", "2000"))
SEND_FOR = 20.0  # seconds of sending, whatever PER_SENDER: several kills land on traffic
KILL_EVERY = (3.0, 8.0)  # seconds between kills, drawn from the seed
DOWN_FOR = (0.0, 1.0)  # seconds the router stays dead, drawn from the seed
FIRST_RECEIPT = 3.0  # seconds after a restart
DRAIN = 30.0  # seconds after the last restart


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_router_killed_every_few_seconds_loses_nothing_it_receipted(
    procs: Procs, tmp_path: Path, journal: list[str], seed: int
) -> None:
    """10 senders to 5 recipients, PER_SENDER messages each over 20 s, the router killed
    (SIGKILL) every 3-8 s, its WAL cut back to its last fsync (a power cut), and restarted
    on the same endpoint: nothing receipted is lost,
    duplicated or reordered; receipts resume within 3 s of each restart; all is handed over
    within 30 s of the last. Two recipients are slower than their mail comes, with a small
    credit window, so that every kill finds mail waiting at the router: a router that keeps
    it only in memory loses it (the fast three take theirs as it comes)."""
    rng = random.Random(seed)
    run = Run(procs, tmp_path, journal)
    recipients = [f"r{i}" for i in range(RECIPIENTS)]
    offered = SENDERS * PER_SENDER / SEND_FOR / RECIPIENTS  # a second, to each recipient
    for i, name in enumerate(recipients):
        slow = ("--delay", f"{1000 / (0.8 * offered):.2f}", "--window", "32")
        run.recipient(name, *(slow if i < SLOW else ()))
    start = time.monotonic()
    for i in range(SENDERS):
        run.sender(f"s{i}", PER_SENDER, recipients, PER_SENDER / SEND_FOR)
    at = start + rng.uniform(*KILL_EVERY)
    while at < start + SEND_FOR:
        time.sleep(max(0.0, at - time.monotonic()))  # the fault schedule, not a sync
        run.restart(signal.SIGKILL, rng.uniform(*DOWN_FOR))
        at = time.monotonic() + rng.uniform(*KILL_EVERY)
    last = run.restarts[-1].started_ns / 1e9 if run.restarts else start

    total = SENDERS * PER_SENDER
    drained = poll_until(lambda: run.drained(recipients), last + DRAIN - time.monotonic())
    drain_took = time.monotonic() - last
    report = run.report(recipients)
    histories = run.histories()
    firsts = [first_receipt_after(r, histories) for r in run.restarts]
    left = settled_mailboxes(procs.url)
    run.stop_recipients()
    why = f"seed {seed}: {report}{still_there(left)}"
    print(  # noqa: T201 - the report's numbers (pytest -s)
        f"\nbouncer, seed {seed}: {SENDERS} senders x {PER_SENDER} to {RECIPIENTS} recipients,"
        f" {len(run.restarts)} kills; first receipt after each restart"
        f" {', '.join(f'{f:.2f}' for f in firsts)} s; drained {drain_took:.1f} s after the"
        f" last: {why}"
    )
    assert report.ok, why
    assert report.attempted == total, why
    assert len(run.restarts) >= 2, "fewer than two kills landed in the send phase"
    assert drained, f"not drained {DRAIN} s after the last restart: {why}"
    late = [f for f in firsts if f > FIRST_RECEIPT]
    assert not late, f"seed {seed}: first receipt after a restart took {late} s"
    assert not left, why
    assert set(run.sender_lines().values()) == {"DONE"}


# -- b. offline recipients across two restarts --------------------------------------------

OFFLINE_SENDERS = 3
OFFLINE_COUNT = 1500  # per sender
OFFLINE_RATE = 150.0  # a second, per sender: 10 s of sending


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_mail_for_offline_recipients_survives_a_sigterm_and_a_sigkill_of_the_router(
    procs: Procs, tmp_path: Path, journal: list[str]
) -> None:
    """3 senders to 2 online and 3 offline recipients; the router is stopped (SIGTERM) and
    restarted a third of the way through, killed (SIGKILL) and restarted two thirds of the
    way; then the offline recipients connect. Each gets every message once, in order, and
    the mailboxes end empty."""
    run = Run(procs, tmp_path, journal)
    online, offline = ["on0", "on1"], ["off0", "off1", "off2"]
    for name in online:
        run.recipient(name)
    for i in range(OFFLINE_SENDERS):
        run.sender(f"s{i}", OFFLINE_COUNT, online + offline, OFFLINE_RATE)
    total = OFFLINE_SENDERS * OFFLINE_COUNT
    for sig, share in ((signal.SIGTERM, 1 / 3), (signal.SIGKILL, 2 / 3)):
        wanted = total * share
        wait_for(lambda: run.receipted() >= wanted, 30, f"{share:.0%} receipted")  # noqa: B023
        run.restart(sig)
    wait_for(run.senders_done, 60, "the senders to finish")
    waiting = mailboxes(procs.url)
    for name in offline:
        run.recipient(name)
    everyone = online + offline
    drained = poll_until(lambda: run.drained(everyone), DRAIN)
    report = run.report(everyone)
    left = settled_mailboxes(procs.url)
    run.stop_recipients()
    why = f"{report}{still_there(left)}"
    print(  # noqa: T201 - the report's numbers (pytest -s)
        f"\noffline recipients: mail waiting before they came {waiting}; {why}"
    )
    assert report.ok, why
    assert report.attempted == total, why
    assert all(waiting.get(name, (0, 0))[0] > 0 for name in offline), (
        f"no mail waited for the offline recipients: the fault missed its point ({waiting})"
    )
    assert drained, f"not drained {DRAIN} s after the offline recipients came: {why}"
    assert not left, why
    assert set(run.sender_lines().values()) == {"DONE"}
