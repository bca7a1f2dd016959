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
delivery; it is never overwritten, and Ctrl-C is never sent.

Exactly once across agent crashes: the intent is journaled (fsynced) before the paste and the
paste recorded after it (zmqswarm.agent.intents). A message that comes again with an open intent is
looked for in the pane's history (the envelope carries its ticket): found, or pasted per the
journal, means it is never pasted again; at most Enter is pressed, if the text still waits in
the input line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field

from zmqswarm.agent.gateway import ControlClient, TmuxError
from zmqswarm.agent.intents import IntentLog
from zmqswarm.agent.panes import STATE, TAG, Pane, PaneWatch
from zmqswarm.agent.paste import paste, press_enter, sanitize
from zmqswarm.agent.profiles import Profile, load_profile
from zmqswarm.client.aio import AsyncClient
from zmqswarm.client.tickets import Message
from zmqswarm.errors import ConfigError
from zmqswarm.protocol import ClientOptions

__all__ = ["STATE", "TAG", "Agent", "Outcome", "envelope", "run_agent"]

log = logging.getLogger("zmqswarm.agent")

# Deliveries in flight to one agent name: each waits for its pane anyway, and unacked mail
# stays the router's, where it survives this process.
AGENT_OPTIONS = ClientOptions(recv_window=32)


def envelope(msg: Message) -> str:
    """The line pasted before a body: who sent it, its ticket, and how to answer."""
    return f"[zs] from {msg.sender} · ticket {msg.ticket} · reply: zs send {msg.sender} '...'"


_failed_once: set[str] = set()


def crash_point(name: str, count: int) -> None:
    """Fault injection for tests, at points before_paste, before_enter and after_paste of the
    agent's n-th message: ``ZS_AGENT_CRASH=<point>:<n>`` SIGKILLs the agent there, and
    ``ZS_AGENT_FAIL=<point>:<n>`` raises a TmuxError there once (a pane dying mid-way)."""
    here = f"{name}:{count}"
    if os.environ.get("ZS_AGENT_CRASH") == here:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("ZS_AGENT_FAIL") == here and here not in _failed_once:
        _failed_once.add(here)
        raise TmuxError("send-keys", f"injected failure at {here}")


@dataclass(slots=True)
class Outcome:
    """How one delivery ended; ``note()`` is what goes back with the ack."""

    status: str  # submitted | typed_not_submitted | no_evidence | recovered | expired
    wait_ms: float = 0.0  # receipt -> ready
    paste_ms: float = 0.0  # ready -> pasted
    submit_ms: float = 0.0  # pasted -> Enter sent
    verify_ms: float = 0.0  # Enter -> verified
    enters: int = 1
    held: list[tuple[str, float]] = field(default_factory=list)  # (outcome, seconds) waited

    def note(self) -> str:
        if self.status == "expired":  # the router makes this a dead letter, not a delivery
            note = f"expired: its ttl passed after {self.wait_ms:.0f} ms waiting for the pane"
            if self.held:
                note += " held=" + ",".join(f"{what}:{secs:.1f}s" for what, secs in self.held)
            return note
        note = (
            f"{self.status} wait={self.wait_ms:.0f} paste={self.paste_ms:.0f}"
            f" submit={self.submit_ms:.0f} verify={self.verify_ms:.0f} ms enters={self.enters}"
        )
        if self.held:
            note += " held=" + ",".join(f"{what}:{secs:.1f}s" for what, secs in self.held)
        return note


@dataclass
class Stats:
    delivered: int = 0
    deferred: int = 0  # deliveries that had to wait (draft, copy mode, busy)
    dead: int = 0  # times a writer found its pane dead or gone
    outcomes: dict[str, int] = field(default_factory=dict)


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
    ) -> None:
        self.names = names
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
        finally:
            for writer in self.writers.values():
                writer.task.cancel()
            for writer in self.writers.values():
                with contextlib.suppress(asyncio.CancelledError):
                    await writer.task
                await writer.client.close(timeout=1.0)
            self.journal.close()
            await self.watch.close()
            await self.write.close()
            st = self.stats
            log.warning(
                "zs agent stopped: %d delivered %s, %d waits (draft, mode, busy), %d dead pane",
                st.delivered,
                st.outcomes or "",
                st.deferred,
                st.dead,
            )

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


class PaneWriter:
    """One agent name: its client, its FIFO, and the one coroutine that writes to its pane."""

    def __init__(self, agent: Agent, name: str, pane: str | None) -> None:
        self.agent = agent
        self.name = name
        self.fixed = pane
        self.profile = agent.profile  # of the pane being served: set for each message
        self.client = AsyncClient(name, router=agent.router, auto_ack=False, options=AGENT_OPTIONS)
        self.client.start()
        self.state = ""  # last reported to the router (zs peers)
        self.delivering = False
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"zs-agent-{name}")

    async def _run(self) -> None:
        follow = asyncio.get_running_loop().create_task(self._follow_pane())
        try:
            while True:
                self.report(self.pane_state())
                try:
                    msg = await self.client.recv(timeout=1.0)
                except TimeoutError:
                    continue
                await self._handle(msg)
        finally:
            follow.cancel()

    async def _follow_pane(self) -> None:
        """Between messages, tell the router at once when the pane dies or comes back (the
        doorbell makes a pane death a new snapshot within milliseconds)."""
        while True:
            await self.agent.watch.changed().wait()
            if not self.delivering:
                self.report(self.pane_state())

    def pane_state(self) -> str:
        pane = self.target()
        if pane is not None:
            return f"live {pane.id}"
        return f"dead: {f'pane {self.fixed} is gone' if self.fixed else 'no live pane'}"

    def report(self, state: str) -> None:
        """What ``zs peers`` shows for this name (sent to the router when it changes)."""
        if state != self.state:
            self.state = state
            self.client.set_state(state)

    async def _handle(self, msg: Message) -> None:
        self.delivering = True
        try:
            outcome = await self.deliver_until_done(msg)
        finally:
            self.delivering = False
        msg.ack(outcome.note())
        self.agent.journal.done(str(msg.ticket))
        stats = self.agent.stats
        stats.delivered += 1
        stats.outcomes[outcome.status] = stats.outcomes.get(outcome.status, 0) + 1
        if outcome.status != "submitted":
            log.warning("%s: %s %s", self.name, msg.ticket, outcome.note())

    # -- one message ----------------------------------------------------------------------

    async def deliver_until_done(self, msg: Message) -> Outcome:
        """``deliver()``, again after a failure (the pane died mid-paste, tmux went away, a
        bug): the same message, so order holds, and the journal keeps a paste that went out
        from going out twice."""
        backoff = 0.2
        while True:
            try:
                return await self.deliver(msg)
            except TmuxError as exc:
                log.warning("%s: %s: %s; trying again", self.name, msg.ticket, exc)
            except Exception:
                log.exception("%s: delivering %s failed; trying again", self.name, msg.ticket)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def deliver(self, msg: Message) -> Outcome:
        agent, watch, journal = self.agent, self.agent.watch, self.agent.journal
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        held: list[tuple[str, float]] = []
        pane = await self.ready_pane(msg, held)
        t_ready = loop.time()
        if pane is None:  # its ttl passed while it waited: never paste it
            return Outcome("expired", wait_ms=(t_ready - t0) * 1000, held=held)
        agent.handled += 1
        ticket = str(msg.ticket)
        head = self.profile.envelope_prefix + envelope(msg)
        body = self.body(msg, head)
        stage = journal.open.get(ticket)
        if stage is not None:
            shown = await watch.history_shows(pane, f"ticket {ticket} ")
            if shown or stage == "P":
                log.warning("%s was pasted before a crash: not pasting it again", ticket)
                return await self.recover(pane, body, shown)
        journal.intend(ticket)
        crash_point("before_paste", agent.handled)
        await paste(agent.write, pane, body)
        journal.pasted(ticket)
        watch.touched(pane)
        t_pasted = loop.time()
        crash_point("before_enter", agent.handled)
        await asyncio.sleep(self.profile.settle)  # let the program take the paste first
        await press_enter(agent.write, pane)
        t_enter = loop.time()
        crash_point("after_paste", agent.handled)
        outcome = await self.verify(pane, body, entered=True)
        outcome.wait_ms = (t_ready - t0) * 1000
        outcome.paste_ms = (t_pasted - t_ready) * 1000
        outcome.submit_ms = (t_enter - t_pasted) * 1000
        outcome.verify_ms = (loop.time() - t_enter) * 1000
        outcome.held = held
        return outcome

    async def recover(self, pane: str, body: str, shown: bool) -> Outcome:
        """A paste went out before a crash: make sure it is submitted, never paste it again."""
        if self.profile.prompt is not None:
            outcome = await self.verify(pane, body, entered=False)
        elif shown:
            outcome = Outcome("submitted", enters=0)  # the program showed it: it took it
        else:
            await press_enter(self.agent.write, pane)  # pasted, unseen: the Enter never went
            outcome = Outcome("submitted", enters=1)
        if outcome.status == "submitted":
            outcome.status = "recovered"
        return outcome

    def body(self, msg: Message, head: str) -> str:
        """The text to paste: envelope line + body, or a pointer to a file for a large one."""
        text = sanitize(msg.text).rstrip("\n")
        if self.profile.expand_tabs:
            text = text.replace("\t", " " * self.profile.expand_tabs)
        if len(text) <= self.agent.max_paste:
            return f"{head}\n{text}"
        os.makedirs(self.agent.spool, mode=0o700, exist_ok=True)
        path = os.path.join(self.agent.spool, f"{str(msg.ticket).replace('/', '-')}.txt")
        with open(path, "w") as f:
            f.write(msg.text)
        return f"{head}\nthe message is {len(msg.payload)} bytes: read {path}"

    # -- where and when -------------------------------------------------------------------

    def target(self) -> Pane | None:
        watch = self.agent.watch
        if self.fixed is None:
            return watch.tagged(self.name)
        pane = watch.panes.get(self.fixed)
        return pane if pane is not None and not pane.dead else None

    async def ready_pane(self, msg: Message, held: list[tuple[str, float]]) -> str | None:
        """Wait for a live pane that can take ``msg`` now (None: its ttl passed first). While
        it waits, the router (and a sender that asked for ``notify``) hears why:
        ``msg.hold()``, on every change and again well within the router's redeliver_after.
        ``held`` collects (outcome, seconds) of each wait for the final note."""
        watch = self.agent.watch
        loop = asyncio.get_running_loop()
        told, told_at, since_told = "", 0.0, 0.0
        started = loop.time()
        # Holds keep the router from delivering the waiting mail again: well within its wait.
        hold_every = min(2.0, self.client.redeliver_after / 2)

        def say_held(outcome: str, why: str) -> None:
            nonlocal told, told_at, since_told
            now = loop.time()
            if outcome != told:
                if told:
                    held.append((told, now - since_told))
                since_told = now
                if outcome == "dead":
                    self.agent.stats.dead += 1
                else:
                    self.agent.stats.deferred += 1
                log.warning("%s: %s %s: %s", self.name, outcome, msg.ticket, why)
            if outcome != told or now - told_at >= hold_every:
                msg.hold(f"{outcome}: {why}")
                self.report(f"{outcome}: {why}")
                told, told_at = outcome, now

        while True:
            if msg.expires and loop.time() >= msg.expires:
                if told:
                    held.append((told, loop.time() - since_told))
                return None
            pane = self.target()
            if pane is None:
                say_held("dead", f"no live pane for {self.name}; held at the router")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(watch.changed().wait(), 1.0)
                continue
            watch.served.add(pane.id)  # until the next _keep_sampling, if it is a new one
            self.profile = profile = self.agent.profile_for(pane)
            try:
                cursor, hooked, blocked = await watch.state(pane.id)
                screen, since = await watch.sample(pane.id)
                if profile.ignore_dim:
                    screen = await watch.capture_styled(pane.id)
            except TmuxError:
                await watch.refresh()  # the pane went away meanwhile
                continue
            why = self.not_ready(screen, cursor, hooked, blocked, loop.time() - since, profile)
            if not why:
                if told:
                    held.append((told, loop.time() - since_told))
                return pane.id
            if why == "quiet" and loop.time() - started >= hold_every:
                why = "its output has not settled"  # e.g. a retry countdown: say so
            if why != "quiet":
                say_held("refused_draft" if why.startswith("a draft") else "deferred", why)
            await asyncio.sleep(0.04)

    @staticmethod
    def not_ready(
        screen: list[str], cursor: int, hooked: str, blocked: bool, quiet: float, profile: Profile
    ) -> str:
        """Why the pane cannot take a message now ("" if it can)."""
        if blocked:
            return "copy mode or input off"
        if hooked == "busy":
            return "busy (its hook said so)"
        if profile.shows_busy(screen):  # before quiet: a busy screen rarely is
            return "busy (its screen says so)"
        if hooked != "idle" and quiet < profile.quiet:
            return "quiet"
        state = profile.read_screen(screen, cursor)
        if state.draft:
            return f"a draft is typed: {state.draft[:40]!r}"
        return "" if state.ready else "not at its prompt"

    async def verify(self, pane: str, body: str, *, entered: bool) -> Outcome:
        """Was the message submitted? Where the profile can read the input line and our text
        is still in it, press Enter again (at most twice more). Never paste again."""
        watch, profile = self.agent.watch, self.profile
        enters = 1 if entered else 0
        if profile.prompt is None:  # no input line to read: the Enter went out, that is all
            return Outcome("submitted" if entered else "no_evidence", enters=enters)
        tail = body.splitlines()[-1].strip() if body.strip() else ""
        for delay in (0.05, 0.3, 0.8):
            await asyncio.sleep(delay)
            try:
                cursor, _, _ = await watch.state(pane)
                screen, _ = await watch.sample(pane)
                if profile.ignore_dim:
                    screen = await watch.capture_styled(pane)
            except TmuxError:
                return Outcome("no_evidence", enters=enters)  # the pane died meanwhile
            if not still_typed(profile.read_screen(screen, cursor).draft, tail):
                return Outcome("submitted", enters=enters)
            if enters >= 3:
                break
            await press_enter(self.agent.write, pane)
            watch.touched(pane)
            enters += 1
            entered = True
        return Outcome("typed_not_submitted", enters=enters)


async def _either(a: asyncio.Event, b: asyncio.Event, timeout: float) -> None:
    """Wait until one of two events is set, or ``timeout`` seconds."""
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for w in waits:
        w.cancel()


def still_typed(draft: str, tail: str) -> bool:
    """Whether the input line's ``draft`` is the end of our text (last line ``tail``)."""
    if not draft or not tail:
        return False
    probe = draft[-24:]
    return probe in tail or tail[-24:] in draft


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
) -> Agent:
    """Serve ``pane`` as peer ``name`` (or the pane tagged with ``name``; with ``tagged``,
    every tagged pane) until ``stop`` is set."""
    label = name or f"tagged-{socket_name or 'default'}"
    agent = Agent(
        {name: pane} if name else {},
        tagged=tagged,
        router=router,
        socket_name=socket_name,
        socket_path=socket_path,
        journal=journal or default_journal(label),
        profile=profile,
    )
    await agent.run(stop or asyncio.Event())
    return agent
