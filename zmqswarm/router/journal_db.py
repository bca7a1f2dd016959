"""The journal's database: its schema, and the SQL that writes the core's batches and reads
them back. Functions over a sqlite3 connection, no thread and no socket: the journal's writer
thread calls them, and so do the tests (on a database in memory)."""

from __future__ import annotations

import logging
import sqlite3
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Any

import msgspec

from zmqswarm.errors import JournalError
from zmqswarm.protocol.journaling import Batch, DeadRow, Put, PutRow, Restored, Spill, StreamRow
from zmqswarm.protocol.router_state import ENTRY_COST
from zmqswarm.protocol.send_window import INF

__all__ = ["check", "compact", "connect", "read", "read_page", "write"]

log = logging.getLogger("zmqswarm.router")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    rid INTEGER PRIMARY KEY, recipient TEXT NOT NULL, sender TEXT NOT NULL,
    epoch INTEGER NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
    notify INTEGER NOT NULL, expires REAL, accepted REAL NOT NULL, attempts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_recipient ON messages (recipient, rid);
CREATE TABLE IF NOT EXISTS streams (
    name TEXT NOT NULL, epoch INTEGER NOT NULL, wm INTEGER NOT NULL, above TEXT NOT NULL,
    last_seen REAL NOT NULL, PRIMARY KEY (name, epoch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dead (
    id INTEGER PRIMARY KEY, recipient TEXT NOT NULL, sender TEXT NOT NULL,
    epoch INTEGER NOT NULL, seq INTEGER NOT NULL, payload BLOB NOT NULL,
    code INTEGER NOT NULL, at REAL NOT NULL
);
"""


def write(db: sqlite3.Connection, batches: list[Batch]) -> None:
    """Apply ``batches`` in one transaction. Their rows are stored as they come: the
    writer's Python work (which holds the GIL the router's loop needs) stays per batch."""
    done: set[int] = set()
    for b in batches:
        done.update(b.done)
    puts = [p for b in batches for p in b.puts]
    cancelled = done.intersection([p[0] for p in puts]) if done else done
    db.execute("BEGIN")
    # A message put and acknowledged within this commit never touches the disk.
    _insert(db, [p for p in puts if p[0] not in cancelled] if cancelled else puts)
    for b in batches:
        if b.attempts:
            db.executemany(
                "UPDATE messages SET attempts = ? WHERE rid = ?",
                [(n, rid) for rid, n in b.attempts if rid not in cancelled],
            )
        if b.streams:
            db.executemany(
                "INSERT OR REPLACE INTO streams VALUES (?,?,?,?,?)",
                [
                    (s.name, s.epoch, s.wm, msgspec.json.encode(s.above).decode(), s.last_seen)
                    for s in b.streams
                ],
            )
        if b.forgotten:
            db.executemany("DELETE FROM streams WHERE name = ? AND epoch = ?", b.forgotten)
        if b.dead:
            db.executemany(
                "INSERT OR REPLACE INTO dead VALUES (?,?,?,?,?,?,?,?)",
                [(d.id, d.to, d.sender, d.epoch, d.seq, d.payload, d.code, d.at) for d in b.dead],
            )
        if b.dead_upto:
            db.execute("DELETE FROM dead WHERE id <= ?", (b.dead_upto,))
    if done:
        _delete(db, list(done - cancelled))
    db.execute("COMMIT")


# Many rows a statement: each statement runs in one sqlite3_step, around which the sqlite3
# module lets go of the GIL and must take it back, and taking it back from a busy router loop
# can wait out a whole switch interval (5 ms): executemany would do that once a row.
_ROWS = 256


def _insert(db: sqlite3.Connection, rows: list[PutRow]) -> None:
    for i in range(0, len(rows), _ROWS):
        chunk = rows[i : i + _ROWS]
        db.execute(_insert_sql(len(chunk)), list(chain.from_iterable(chunk)))


def _delete(db: sqlite3.Connection, rids: list[int]) -> None:
    for i in range(0, len(rids), _ROWS):
        chunk = rids[i : i + _ROWS]
        db.execute(_delete_sql(len(chunk)), chunk)


@cache
def _insert_sql(rows: int) -> str:
    return "INSERT INTO messages VALUES " + ",".join(["(?,?,?,?,?,?,?,?,?,?)"] * rows)


@cache
def _delete_sql(rows: int) -> str:
    return f"DELETE FROM messages WHERE rid IN ({','.join(['?'] * rows)})"


def read(
    db: sqlite3.Connection, off: float, dead_max: int, resident_bytes: int = 1 << 62
) -> Restored:
    """What the journal holds, in the core's clock (``off``: its offset from wall-clock).
    Messages come back in acceptance order while they fit ``resident_bytes``; from then on a
    name's mail is only counted (``Spill``), to be read back a page at a time."""
    # Once the budget is spent every later message stays on disk, whoever it is for: so
    # what comes back is every record up to one number. Find it without reading payloads.
    upto, resident = 0, 0
    for rid, size in db.execute("SELECT rid, length(payload) FROM messages ORDER BY rid"):
        if resident > resident_bytes:
            break
        upto, resident = rid, resident + size + ENTRY_COST
    rows = db.execute("SELECT * FROM messages WHERE rid <= ? ORDER BY rid", (upto,))
    puts = [_put(row, off) for row in rows]
    cursors = {put.to: put.rid for put in puts}
    spills = [
        Spill(name, count, nbytes, cursors.get(name, 0))
        for name, count, nbytes in db.execute(
            "SELECT recipient, count(*), sum(length(payload)) FROM messages WHERE rid > ?"
            " GROUP BY recipient",
            (upto,),
        )
    ]
    (last_rid,) = db.execute("SELECT coalesce(max(rid), 0) FROM messages").fetchone()
    streams = [
        StreamRow(name, epoch, wm, msgspec.json.decode(above, type=list[int]), seen - off)
        for name, epoch, wm, above, seen in db.execute("SELECT * FROM streams")
    ]
    with db:  # keep the newest dead_max letters, as the running router does
        db.execute("DELETE FROM dead WHERE id <= (SELECT max(id) FROM dead) - ?", (dead_max,))
    dead = [
        DeadRow(id_, to, sender, epoch, seq, payload, code, at - off)
        for id_, to, sender, epoch, seq, payload, code, at in db.execute(
            "SELECT * FROM dead ORDER BY id"
        )
    ]
    return Restored(puts, streams, dead, spills, last_rid + 1)


def read_page(db: sqlite3.Connection, name: str, after: int, limit: int, off: float) -> list[Put]:
    """Up to ``limit`` of ``name``'s messages after record ``after``, in order."""
    rows = db.execute(
        "SELECT * FROM messages WHERE recipient = ? AND rid > ? ORDER BY rid LIMIT ?",
        (name, after, limit),
    )
    return [_put(row, off) for row in rows]


def _put(row: Any, off: float) -> Put:
    rid, to, sender, epoch, seq, payload, notify, expires, accepted, attempts = row
    until = INF if expires is None else expires - off
    return Put(rid, to, sender, epoch, seq, payload, bool(notify), until, accepted - off, attempts)


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (or create) a journal database: a file, or ``":memory:"`` for tests."""
    try:
        fresh = path == ":memory:" or not Path(path).exists()
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        if fresh and path != ":memory:":
            Path(path).chmod(0o600)
        if fresh:
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")  # before the first table
        # One router per journal (the flock): no shared-memory index file, no mmap of it
        # that a full disk could turn into a SIGBUS.
        db.execute("PRAGMA locking_mode = EXCLUSIVE")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")  # in WAL mode: every commit fsyncs
        db.execute("PRAGMA journal_size_limit = 67108864")  # the WAL shrinks back after use
        db.executescript(_SCHEMA)
    except sqlite3.Error as exc:
        raise JournalError(f"cannot open the journal {path}: {exc}") from None
    return db


def check(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged journal rather than start without what it receipted."""
    problems = [row[0] for row in db.execute("PRAGMA quick_check")]
    if problems != ["ok"]:
        raise JournalError(
            f"the journal {path} is damaged ({'; '.join(problems[:3])}); move it aside to "
            "start empty, or recover it with `sqlite3 FILE .recover`"
        )


def compact(path: Path) -> None:
    """Give back the pages acknowledged messages left free, and empty the WAL."""
    try:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("PRAGMA incremental_vacuum")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
    except sqlite3.Error as exc:
        log.warning("journal %s: compaction skipped: %s", path, exc)
