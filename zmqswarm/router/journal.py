"""The router's journal: what it receipted, on disk before the receipt goes out.

SQLite in WAL mode (the standard library's ``sqlite3``), written by a thread of its own. The
loop hands it the core's batches (a deque, rung for over an inproc PAIR socket: no locks);
the writer takes every batch waiting, applies them in one transaction (a group commit: under
load one fsync covers many turns) and answers over the PAIR with the highest batch number now
on disk. ``synchronous=FULL`` makes each WAL commit fsync before it returns.

Why SQLite rather than a segment log of our own: a commit with fsync costs about what the
fsync does (0.2 ms on the machine in docs/benchmarks.md, 360k rows/s in batches of 1000),
deletes of acknowledged rows reuse pages (the file stays the size of the peak backlog), WAL
frames carry checksums, so a torn tail is an unfinished transaction that recovery drops (it
holds nothing receipted: receipts wait for the fsync), and ``quick_check`` finds the rest.

A message put and acknowledged within one group commit never touches the disk: the two
cancel. Times are stored as wall-clock seconds (the core's clock restarts with the router).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq

from zmqswarm.errors import JournalError
from zmqswarm.private import private_dir
from zmqswarm.protocol.journaling import Batch, Put

from .crash import crash_point, recording_fsyncs
from .journal_db import check, compact, connect, read, read_page, write

if TYPE_CHECKING:
    from zmqswarm.protocol import RouterCore

__all__ = ["Journal", "default_data_dir", "kept_line"]


_RETRY = 0.5  # seconds between attempts to write again after a failure (disk full)


def default_data_dir(endpoint: str) -> Path:
    """Where a router bound to ``endpoint`` keeps its journal by default: one directory per
    endpoint under $XDG_STATE_HOME/zmqswarm (two routers never share a journal)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    plain = endpoint.replace("://", "-")
    slug = "".join(c if c.isalnum() or c in "-." else "_" for c in plain).strip("_")
    return Path(state) / "zmqswarm" / "router" / slug


class Journal:
    """Open (or create) the journal in ``directory``, load what it holds into ``restored``,
    and start its writer. ``submit`` batches; ``answers`` says what became durable."""

    def __init__(
        self,
        directory: Path,
        *,
        context: zmq.Context[Any],
        wall_offset: float,
        dead_max: int = 10_000,
        resident_bytes: int = 64 << 20,
    ) -> None:
        self.directory = directory
        self.path = directory / "journal.sqlite3"
        self._offset = wall_offset  # the core's clock + this = the wall-clock time stored
        self._lock_fd = _lock(directory)
        try:
            db = connect(self.path)
            try:
                check(db, self.path)
                self.restored = read(db, self._offset, dead_max, resident_bytes)
            finally:
                db.close()
        except BaseException:
            os.close(self._lock_fd)
            raise
        self.submitted = 0  # the last batch handed to the writer
        self.durable_upto = 0  # the last batch the writer said is on disk
        # Batches go to the writer through a deque (append and popleft are atomic: no lock)
        # and a doorbell on an inproc PAIR, which carries the writer's answers back. Handing
        # the objects over, instead of encoding them, spares both threads a copy of every
        # payload.
        self._batches: deque[Batch | None] = deque()  # None: stop
        self.pages: deque[tuple[str, list[Put]]] = deque()  # spilled mail read back
        self.sock: zmq.Socket[bytes] = context.socket(zmq.PAIR)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)  # never drop or block: a batch is a promise
        self.sock.setsockopt(zmq.RCVHWM, 0)
        endpoint = f"inproc://zs-journal-{id(self):x}"
        self.sock.bind(endpoint)
        self._writer = threading.Thread(
            target=self._write, args=(context, endpoint), name="zs-journal", daemon=True
        )
        self._writer.start()

    # -- the loop's side ------------------------------------------------------------------

    def submit(self, batch: Batch) -> None:
        self._batches.append(batch)
        self.sock.send(b"")  # the doorbell: the writer takes every batch waiting
        self.submitted = batch.number

    def waiting(self) -> bool:
        """Is a batch still on its way to disk?"""
        return self.durable_upto < self.submitted

    def answers(self) -> Iterator[tuple[int, str]]:
        """What the writer said since last asked, without blocking: (number now durable, "")
        or (0, why it cannot write)."""
        while True:
            try:
                answer = self.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if answer[:1] == b"=":
                self.durable_upto = int(answer[1:])
                yield self.durable_upto, ""
            else:
                yield 0, answer[1:].decode(errors="replace")

    def hear(self, core: RouterCore, now: float, flush: Callable[[float], None]) -> None:
        """Hand the writer's answers to the core: how far the disk has caught up (then
        ``flush``: the receipts that waited for it), a failure to write, pages of mail that
        waited on disk."""
        heard = False
        for durable, failure in self.answers():
            if failure:
                core.journal_failing(failure, now)
            else:
                core.durable(durable, now)
                heard = True
        if heard:
            crash_point("router.before_receipt")
            flush(now)
            crash_point("router.after_receipt")
        while self.pages:
            core.paged_in(*self.pages.popleft(), now)

    def finish(self, core: RouterCore, flush: Callable[[float], None]) -> str:
        """A clean stop: the last batch to disk and its receipts out. Returns what stays,
        in the words of the stop's log line."""
        written = core.take_journal()
        if written is not None:
            self.submit(written)
        deadline = time.monotonic() + 5.0
        while self.waiting() and time.monotonic() < deadline:
            if self.sock.poll(100):
                self.hear(core, time.monotonic(), flush)
        flush(time.monotonic())
        return kept_line(core.kept())

    def close(self, timeout: float = 5.0) -> bool:
        """Let the writer finish what it has (up to ``timeout``), stop it, compact the file.
        True if everything submitted is on disk."""
        deadline = time.monotonic() + timeout
        while self.waiting() and time.monotonic() < deadline:
            if self.sock.poll(int(max(0.0, deadline - time.monotonic()) * 1000) + 1):
                for _ in self.answers():
                    pass
        done = not self.waiting()
        self._batches.append(None)
        self.sock.send(b"")
        self._writer.join(max(0.1, deadline - time.monotonic()))
        self.sock.close(0)
        if not self._writer.is_alive():
            compact(self.path)
        os.close(self._lock_fd)
        return done

    # -- the writer thread ----------------------------------------------------------------

    def _write(self, context: zmq.Context[Any], endpoint: str) -> None:
        db = connect(self.path)
        sock: zmq.Socket[bytes] = context.socket(zmq.PAIR)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(endpoint)
        batches, off = self._batches, self._offset
        wal = f"{self.path}-wal"
        record = (  # for fault tests: the WAL's length at each fsync
            os.open(f"{self.path}.fsynced", os.O_WRONLY | os.O_CREAT, 0o600)
            if recording_fsyncs()
            else None
        )
        pending: list[Batch] = []
        retry_at = 0.0  # after a failed write, not before this
        stopping = False
        try:
            while not stopping:
                # Wait for work; while a write is failing, wake to retry it.
                wait = -1 if not pending else max(0, int((retry_at - time.monotonic()) * 1000))
                if sock.poll(wait):
                    while True:
                        try:
                            sock.recv(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                while batches:
                    batch = batches.popleft()
                    if batch is None:
                        stopping = True
                    else:
                        pending.append(batch)
                if not pending or time.monotonic() < retry_at:
                    continue
                try:
                    crash_point("journal.before_commit")
                    write(db, pending)
                    crash_point("journal.after_commit")
                    if record is not None:
                        os.pwrite(record, b"%20d" % os.path.getsize(wal), 0)
                    for batch in pending:
                        for name, after, limit in batch.reads:
                            self.pages.append((name, read_page(db, name, after, limit, off)))
                except sqlite3.Error as exc:
                    if db.in_transaction:
                        db.rollback()
                    retry_at = time.monotonic() + _RETRY
                    sock.send(b"!" + str(exc).encode())
                    continue  # kept, to be written again once it can be
                sock.send(b"=%d" % pending[-1].number)
                pending = []
        finally:
            db.close()
            sock.close(0)
            if record is not None:
                os.close(record)


def _lock(directory: Path) -> int:
    """One router per journal: an flock, released by the kernel if the router dies."""
    private_dir(directory)  # what it holds is every mailbox: refuse a place others may write
    try:
        fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise JournalError(f"cannot use {directory} for the journal: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.read(fd, 32).decode(errors="replace").strip()
        os.close(fd)
        raise JournalError(
            f"the journal in {directory} is in use by another router (pid {pid or '?'})"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd


def kept_line(kept: dict[str, int]) -> str:
    """What a journal keeps, in the words of a clean stop's log line."""
    if not kept:
        return "keeps no messages"
    names = ", ".join(f"{name} {n}" for name, n in list(kept.items())[:10])
    more = f" and {len(kept) - 10} more names" if len(kept) > 10 else ""
    return f"keeps {sum(kept.values())} messages for: {names}{more}"
