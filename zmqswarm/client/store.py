"""The files behind ``Client(spool=...)`` and ``Client(state=...)``: one append-only journal
each (the records and what they mean: zmqswarm/protocol/resume_log.py), held by one process.

Why an append-only file with a checksum per record, not SQLite: the spool's cost is paid
inside every ``send()``, and measured here (ext4, 64-byte payloads, no fsync) one ``writev``
of a record costs 2.8 us against 15-19 us for an SQLite WAL commit (synchronous OFF or
NORMAL). Appends need no index: what is live is known in memory (with where it lies), the
file is read only at open, and once most of it is history it is rewritten (compacted) by
copying the live byte ranges into a new file: a few ms, nothing decoded.

Durability: a record is written (``os.writev``, so in the kernel) before ``send()`` returns
and before an Ack leaves: it survives the process being killed. It survives the machine
crashing once fsynced: ``sync_every`` seconds after it at most while the client is called
(fsync measured here: 0.2 to 1.5 ms), and at close; ``sync_every=0`` fsyncs every write.

One process at a time: ``PATH.lock`` is held with flock (released by the kernel when the
holder dies, however it dies), and carries the holder's pid for the error that names it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from zmqswarm.errors import ConfigError, StoreError, StoreInUseError
from zmqswarm.private import open_private
from zmqswarm.protocol.resume_log import CLOSE_COMPACT_AT, COMPACT_AT, Scan, scan

__all__ = ["Journal"]

INF = float("inf")
_IOV = 512  # iovecs per writev, below IOV_MAX (1024)


class Log(Protocol):
    def opening(self) -> list[bytes]: ...
    def compact_due(self, size: int, limit: int) -> bool: ...
    def compaction(self) -> tuple[list[bytes], list[tuple[int, int]]]: ...
    def moved(self, at: int) -> None: ...


L = TypeVar("L", bound=Log)


class Journal(Generic[L]):
    """One journal file, held by this process. ``log`` is what it means (a SpoolLog or a
    SeenLog), built from the records found at open."""

    def __init__(self, path: str, log: L, fd: int, lock: int, size: int, sync_every: float):
        self.path, self.log, self.sync_every = path, log, sync_every
        self._fd, self._lock, self.size = fd, lock, size
        self._dirty = INF  # when the oldest write not yet fsynced was made

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], make: Callable[[Scan], L], sync_every: float
    ) -> Journal[L]:
        """Take ``path`` (made if missing) for this process; ``make(scan)`` builds the log
        from what the file holds, and the log's ``opening()`` records are appended."""
        path = os.fspath(path)
        lock = _take_lock(path)
        fd = -1
        try:
            fd = _open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND)
            data = _read(fd)
            try:
                found = scan(data)
                log = make(found)
            except ValueError as exc:
                raise StoreError(f"{path}: {exc}; move it aside to start afresh") from None
            end = found.end
            if end < len(data):
                os.ftruncate(fd, end)  # the append a kill cut short: never finished, never promised
        except BaseException:
            if fd >= 0:
                os.close(fd)
            os.close(lock)
            raise
        journal = cls(path, log, fd, lock, end, sync_every)
        try:
            journal.append(log.opening(), 0.0)
        except BaseException:
            journal.close()
            raise
        return journal

    def append(self, records: list[bytes], now: float) -> None:
        """Write ``records`` at the end; on return they survive this process being killed.
        On failure (a full disk) none of them stays: the file ends where it did."""
        if not records:
            return
        start, fd = self.size, self._fd
        try:
            if len(records) == 1:  # the usual case: one record, one write
                _write_all(fd, records[0])
                self.size += len(records[0])
            else:
                for i in range(0, len(records), _IOV):
                    chunk = records[i : i + _IOV]
                    size = sum(map(len, chunk))
                    done = os.writev(fd, chunk)
                    if done < size:
                        _write_all(fd, memoryview(b"".join(chunk))[done:])
                    self.size += size
        except OSError as exc:
            self.size = start
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass  # then the next open drops the cut record
            raise StoreError(f"cannot write {self.path}: {exc.strerror}") from exc
        dirty = self._dirty
        if dirty == INF:
            dirty = self._dirty = now
        if now >= dirty + self.sync_every:  # a long burst of sends syncs as it goes
            self._fsync()
        if self.size > COMPACT_AT and self.log.compact_due(self.size, COMPACT_AT):
            self._compact()

    def sync_due(self) -> float:
        """When the next fsync is due (INF: all synced)."""
        return self._dirty + self.sync_every

    def sync(self) -> None:
        if self._dirty != INF:
            self._fsync()

    def close(self) -> None:
        if self._fd < 0:
            return
        try:
            if self.log.compact_due(self.size, CLOSE_COMPACT_AT):
                try:
                    self._compact()  # the next process reads only what is live
                except StoreError:
                    pass  # then it reads the whole journal: slower, the same
            self.sync()
        finally:
            os.close(self._fd)
            os.close(self._lock)  # the lock goes with it
            self._fd = self._lock = -1

    # -- internals ------------------------------------------------------------------------

    def _fsync(self) -> None:
        os.fsync(self._fd)
        self._dirty = INF

    def _compact(self) -> None:
        """Rewrite the journal with only what it still means: a new file, fsynced, renamed
        over the old (a crash leaves one or the other, whole)."""
        head, ranges = self.log.compaction()
        tmp = f"{self.path}.tmp"
        fd = _open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        try:
            for i in range(0, len(head), _IOV):
                os.writev(fd, head[i : i + _IOV])
            for at, size in ranges:  # the live records, copied as they lie
                while size:
                    chunk = os.pread(self._fd, min(size, 1 << 20), at)
                    os.write(fd, chunk)
                    at, size = at + len(chunk), size - len(chunk)
            os.fsync(fd)
            os.rename(tmp, self.path)
            _sync_dir(self.path)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot compact {self.path}: {exc.strerror}") from exc
        os.close(self._fd)
        self._fd, self.size, self._dirty = fd, os.fstat(fd).st_size, INF
        self.log.moved(sum(map(len, head)))


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """One write, and more only if the kernel took less (a full disk then raises)."""
    done = os.write(fd, data)
    while done < len(data):
        data = memoryview(data)[done:]
        done = os.write(fd, data)


def _open(path: str, flags: int) -> int:
    """The journal, its lock or a compaction's new file: 0600, whatever the umask or the mode
    an earlier file had (zmqswarm.private). The directory is the user's choice, left as it
    is: the files are what must not be readable by others."""
    try:
        return open_private(path, flags)
    except ConfigError as exc:  # another user's file, or not a file
        raise StoreError(str(exc)) from None


def _take_lock(path: str) -> int:
    fd = _open(f"{path}.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
        os.close(fd)
        raise StoreInUseError(path, int(holder) if holder.isdigit() else None) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _read(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    parts, at = [], 0
    while at < size:
        part = os.pread(fd, size - at, at)
        if not part:
            break
        parts.append(part)
        at += len(part)
    return b"".join(parts)


def _sync_dir(path: str) -> None:
    fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
