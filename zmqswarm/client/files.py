"""A client's two optional files, and everything the client asks of them: the spool
(``spool=``: what this sender sent and the router has not receipted, resent by the next
process) and the state (``state=``: what this recipient handed over and acked, never handed
again). The files themselves are ``store.Journal``s; what their records mean is in
zmqswarm/protocol/resume_log.py.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from zmqswarm.errors import StoreError
from zmqswarm.protocol import ClientCore, Code
from zmqswarm.protocol.client_events import Accepted, Event, Failed
from zmqswarm.protocol.resume_log import SeenLog, SpoolLog
from zmqswarm.transport import clock, new_epoch

from .store import Journal
from .tickets import MessageKey

__all__ = ["ClientFiles", "Path"]

log = logging.getLogger("zmqswarm.client")
INF = float("inf")
Path = str | os.PathLike[str]


class ClientFiles:
    """The spool and the state of one client, either or both absent; held by this process
    (StoreInUseError if a live one holds a file) until ``close()``."""

    def __init__(self, name: str, spool: Path | None, state: Path | None, sync_every: float):
        self.spool: Journal[SpoolLog] | None = None
        self.state: Journal[SeenLog] | None = None
        self._all: list[Journal[Any]] = []
        try:
            if spool is not None:
                self.spool = Journal.open(
                    spool, lambda r: SpoolLog(r, name, new_epoch()), sync_every
                )
                self._all.append(self.spool)
            if state is not None:
                self.state = Journal.open(state, lambda r: SeenLog(r, name), sync_every)
                self._all.append(self.state)
        except BaseException:
            self.close()
            raise

    def __bool__(self) -> bool:
        return bool(self._all)

    # -- sending ----------------------------------------------------------------------------

    def resume(self, core: ClientCore) -> tuple[list[int], list[Event]]:
        """Carry on the stream the spool holds: what an earlier process sent and the router
        never receipted goes again, with the same seqs (the router drops what it has).
        Returns their seqs, and the failures of those whose ttl ran out meanwhile."""
        assert self.spool is not None
        spooled = self.spool.log
        now_ms = int(time.time() * 1000)
        unsent = []
        expired: list[Event] = []
        for seq in sorted(spooled.unsent):
            m = spooled.unsent[seq]
            ttl_ms = m.deadline_ms - now_ms if m.deadline_ms else 0
            if m.deadline_ms and ttl_ms <= 0:
                expired.append(Failed(seq, m.to, Code.EXPIRED, "ttl passed in the spool"))
            else:
                unsent.append((seq, m.to, m.payload, m.notify, ttl_ms))
        core.resume(spooled.next_seq, unsent, clock())
        resumed = sorted(spooled.unsent)
        spooled.unsent = {}  # the send window holds them now
        return resumed, expired

    def sent(
        self,
        core: ClientCore,
        to: str,
        payloads: list[bytes],
        notify: bool,
        ttl_ms: int,
        now: float,
    ) -> None:
        """On disk before their frame can leave: ``send()`` promises it. The core checks the
        arguments first, so that nothing it would refuse is spooled."""
        spool = self.spool
        if spool is None:
            return
        core.check(to, payloads)
        deadline = int(time.time() * 1000) + ttl_ms if ttl_ms else 0
        seq = core.window.next_seq
        spool.append(spool.log.add(seq, to, payloads, notify, deadline, spool.size), now)

    def settle(self, events: list[Event], session: bool, hellos: int, now: float) -> None:
        """Receipted or abandoned: no later process sends them again. And after a session
        event (Hellos follow) the spool keeps the attempts it reserves ahead of them."""
        spool = self.spool
        if spool is None:
            return
        seqs = [s for ev in events if isinstance(ev, Accepted) for s in ev.seqs]
        seqs += [ev.seq for ev in events if isinstance(ev, Failed)]
        records = [spool.log.settle(seqs)] if seqs else []
        if session:
            records += spool.log.reserve(hellos)
        try:
            spool.append(records, now)
        except StoreError as exc:  # not fatal: a later process resends, the router drops
            log.warning("%s", exc)

    # -- receiving --------------------------------------------------------------------------

    def acked(self, keys: list[MessageKey], now: float) -> None:
        """On disk before the messages are acked (or handed over, with auto_ack): a later
        process is never handed them again."""
        state = self.state
        if state is not None:
            state.append([state.log.acked(*key) for key in keys], now)

    def handed(self, key: MessageKey) -> None:
        """Handed over, not acked yet: a redelivery of it is still expected, and allowed."""
        if self.state is not None:
            self.state.log.handed(*key)

    # -- upkeep ---------------------------------------------------------------------------

    def sync(self, now: float) -> float:
        """fsync the files whose writes have waited ``sync_every``; when the next is due."""
        due = INF
        for store in self._all:
            if now >= store.sync_due():
                store.sync()
            due = min(due, store.sync_due())
        return due

    def close(self) -> None:
        """Let go of the files (fsynced); what was never receipted stays in the spool."""
        stores, self._all = self._all, []
        try:
            for store in stores:
                store.close()
        finally:
            for store in stores:
                store.close()  # after a failure, the others all the same (a no-op if done)
