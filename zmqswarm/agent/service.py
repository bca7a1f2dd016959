"""``zs agent``: a peer that delivers each message it receives into a tmux pane.

One process serves one pane (``--pane``), the pane tagged with one name, or every tagged pane
of a tmux server (``--tagged``), each under its own peer name. Per name there is one writer
(``PaneWriter``) with its own client: one FIFO queue, one message in the pane at a time, each
pasted whole with an envelope line, submitted by its own Enter, verified, and acked to the
router only then, with its outcome and timings as the ack's note (the sender's Delivered
notice carries it). A message the agent cannot deliver stays unacked, so at the router.

All tmux traffic goes over two persistent control-mode clients (lanes): the write lane carries
set-buffer / paste-buffer / send-keys, the query lane (``PaneWatch``) carries list-panes,
captures and history searches, so a large capture never delays an Enter.

Readiness: the pane exists, is not dead, not in copy mode and takes input (else: defer, never
cancel); the agent's own hook state (``zs hook idle|busy`` sets ``@zs_state``) beats scraping;
otherwise the screen must have been still for the profile's ``quiet`` seconds and, if the
profile knows the prompt, the cursor line must be an empty prompt. A human's draft defers the
delivery; it is never overwritten, and Ctrl-C is never sent. Every wait ends: after the
profile's ``max-hold`` the message is given up as a dead letter, with the reason.

Exactly once across agent crashes: the intent (ticket, pane) is journaled, fsynced, before the
paste (zmqswarm.agent.intents); the paste and the Enter each record themselves in the pane in
the same tmux batch. A message that comes again with an open intent is finished from what its
pane records and shows (zmqswarm.agent.delivery): pasted and entered, it is verified; pasted
only, its Enter is pressed once the input line holds our text alone; in no live pane, it is
pasted again. Never acked before it is submitted.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING

from zmqswarm.agent.delivery import envelope
from zmqswarm.agent.gateway import ControlClient
from zmqswarm.agent.intents import IntentLog
from zmqswarm.agent.outcome import Outcome, Stats
from zmqswarm.agent.panes import STATE, TAG, Pane, PaneWatch
from zmqswarm.agent.profiles import Profile, load_profile
from zmqswarm.agent.writer import PaneWriter
from zmqswarm.errors import ConfigError
from zmqswarm.private import private_dir

if TYPE_CHECKING:
    from zmqswarm.keys import ClientKeys

__all__ = ["STATE", "TAG", "Agent", "Outcome", "envelope", "run_agent"]

log = logging.getLogger("zmqswarm.agent")


class Agent:
    """The process: the lanes, the pane watch, the journal and one writer per name.

    Args:
        names: pane per name to serve; a pane of None follows the pane tagged with the name.
        tagged: also serve every name found in ``@zs_agent`` tags, as they appear.
    """

    def __init__(
        self,
        names: dict[str, str | None],
        *,
        tagged: bool = False,
        router: str | None = None,
        socket_name: str | None = None,
        socket_path: str | None = None,
        journal: str,
        profile: Profile | None = None,
        max_paste: int = 16 * 1024,
        spool: str | None = None,
        curve: ClientKeys | None = None,
    ) -> None:
        self.names = names
        self.curve = curve
        self.tagged = tagged
        self.router = router
        self.profile = profile or Profile()
        self.max_paste = max_paste
        self.spool = spool or os.path.join(os.path.dirname(journal), "bodies")
        self.write = ControlClient(socket_name, socket_path=socket_path)
        self.watch = PaneWatch(socket_name, socket_path=socket_path)
        self.journal = IntentLog(journal)
        self.writers: dict[str, PaneWriter] = {}
        self.stats = Stats()
        self.handled = 0  # messages taken so far, for crash points
        self._profiles: dict[str, Profile] = {}

    async def run(self, stop: asyncio.Event) -> None:
        await self.watch.start()
        try:
            for name, pane in self.names.items():
                self._serve(name, await self.watch.resolve(pane) if pane else None)
            while not stop.is_set():
                if self.tagged:
                    for name in sorted(self.watch.tags() - set(self.writers)):
                        self._serve(name, None)
                self._keep_sampling()
                await _either(stop, self.watch.changed(), timeout=0.5)  # a new tag: at once
                self._check_writers()
        finally:
            for writer in self.writers.values():
                writer.task.cancel()
            # A failed writer's error was raised already: gather only waits for the rest.
            await asyncio.gather(*(w.task for w in self.writers.values()), return_exceptions=True)
            for writer in self.writers.values():
                await writer.client.close(timeout=1.0)
            self.journal.close()
            await self.watch.close()
            await self.write.close()
            st = self.stats
            log.info(
                "zs agent stopped: %d delivered %s, %d waits (draft, mode, busy), %d dead pane",
                st.delivered,
                st.outcomes or "",
                st.deferred,
                st.dead,
            )

    def _check_writers(self) -> None:
        """A writer ends only by an error retrying cannot mend (the router refused our key
        or the name): the agent stops with it, as every other command does."""
        for writer in self.writers.values():
            if writer.task.done() and not writer.task.cancelled():
                error = writer.task.exception()
                if error is not None:
                    raise error

    def profile_for(self, pane: Pane) -> Profile:
        """The pane's own profile (``@zs_profile``, set by ``zs agent tag --profile``), else
        the agent's. A bad one is reported once and the agent's used instead."""
        if not pane.profile:
            return self.profile
        found = self._profiles.get(pane.profile)
        if found is None:
            try:
                found = load_profile(pane.profile)
            except ConfigError as exc:
                log.error("%s: %s; using the agent's profile", pane.id, exc)
                found = self.profile
            self._profiles[pane.profile] = found
        return found

    def _serve(self, name: str, pane: str | None) -> None:
        log.info("serving %s in %s", name, pane or f"the pane tagged {TAG}={name}")
        self.writers[name] = PaneWriter(self, name, pane)
        self._keep_sampling()

    def _keep_sampling(self) -> None:
        """Sample the screens of the panes we serve, before any message comes for them: a
        pane seen quiet for long enough takes its first message at once."""
        served = {p.id for w in self.writers.values() if (p := w.target()) is not None}
        self.watch.served = served


async def _either(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Wait until one of two events is set, or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()


def default_journal(label: str) -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "zmqswarm", f"agent-{label}.journal")


async def run_agent(
    name: str | None,
    pane: str | None,
    *,
    tagged: bool = False,
    router: str | None = None,
    socket_name: str | None = None,
    socket_path: str | None = None,
    journal: str | None = None,
    profile: Profile | None = None,
    stop: asyncio.Event | None = None,
    curve: ClientKeys | None = None,
) -> Agent:
    """Serve ``pane`` as peer ``name`` (or the pane tagged with ``name``; with ``tagged``,
    every tagged pane) until ``stop`` is set."""
    label = name or f"tagged-{socket_name or 'default'}"
    if journal is None:
        journal = default_journal(label)
        private_dir(os.path.dirname(journal))  # ours ($XDG_STATE_HOME/zmqswarm): 0700
    agent = Agent(
        {name: pane} if name else {},
        tagged=tagged,
        router=router,
        socket_name=socket_name,
        socket_path=socket_path,
        journal=journal,
        profile=profile,
        curve=curve,
    )
    await agent.run(stop or asyncio.Event())
    return agent
