"""Test hooks: places where a router kills itself, as a crash would, when its environment
asks it to. Fault tests use them to stop a router at the worst moments.

``ZS_CRASH_AT=POINT[:N]`` makes the router SIGKILL itself the Nth time (default the first) it
passes POINT, one of ``POINTS``. ``ZS_RECORD_FSYNC=1`` makes the journal note, after every
commit, how long its WAL file was when fsynced (``journal.fsynced`` beside it), so that a test
can truncate the WAL back to it after a kill: a simulated power loss, which loses whatever the
kernel had not yet written."""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "crash_point", "recording_fsyncs"]

POINTS = {
    "journal.before_commit": "the writer has a group of batches and has not committed it",
    "journal.after_commit": "the group is on disk, the loop has not heard so",
    "router.before_receipt": "receipts released by a commit, not yet sent",
    "router.after_receipt": "receipts just sent",
    "router.after_ack": "acks taken in from a recipient, not yet journaled",
}

_point, _, _count = os.environ.get("ZS_CRASH_AT", "").partition(":")
if _point and _point not in POINTS:
    raise SystemExit(f"ZS_CRASH_AT: no crash point {_point!r} (one of: {', '.join(POINTS)})")
_left = int(_count or 1)


def crash_point(name: str) -> None:
    """Die here, by SIGKILL, if the environment asked for it."""
    global _left
    if name == _point:
        _left -= 1
        if _left <= 0:
            os.kill(os.getpid(), signal.SIGKILL)


def recording_fsyncs() -> bool:
    return os.environ.get("ZS_RECORD_FSYNC") == "1"
