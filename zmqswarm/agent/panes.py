"""What the agent knows about the panes of one tmux server, kept fresh cheaply.

``PaneWatch`` owns the query lane (a control client of its own, so that a large capture never
delays a writer's Enter on the write lane). It keeps:

- ``panes``: one batched ``list-panes -a -F`` snapshot, taken again on every structural
  notification the control client gets (``%window-close``, ``%unlinked-window-close``,
  ``%window-pane-changed``, ``%layout-change``, ``%sessions-changed``...; debounced), and every
  ``reconcile`` seconds anyway, so that a pane death no notification announced is seen within
  that time;
- a doorbell for what tmux does not announce: a pane whose program exits or is killed in a
  window of another session, or that dies under ``remain-on-exit``. tmux runs hook commands
  with notifications off, so a hook cannot tell a control client directly. Instead hooks at
  our own index of each hook array (the user's hooks at other indexes stay) signal a
  ``wait-for`` channel, and a third control client waits on it: ``wait-for`` answers at once,
  but the command queued behind it answers only when the channel is signalled. A signal with
  no one waiting is kept for the next wait, so none is lost: a pane death reaches the
  snapshot within milliseconds, not at the next ``reconcile``.
- per served pane, when its screen last changed: a background sampler captures each served
  pane every ``sample_every`` seconds (0.1 ms of tmux time each over control mode), so a
  message for a pane that has been quiet for a while is delivered without first waiting a
  full quiet period. A control client only gets ``%output`` for its own session, which is the
  hidden anchor, so output notifications cannot serve here.

Waiters block on ``changed()``, an event replaced on every snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import msgspec

from zmqswarm.agent.gateway import ANCHOR, ControlClient, TmuxError
from zmqswarm.agent.screen import Mark, Probe, squeeze

__all__ = ["Pane", "PaneWatch", "parse_panes", "parse_probe"]

log = logging.getLogger("zmqswarm.agent")

TAG = "@zs_agent"  # pane user option naming the agent a pane belongs to
STATE = "@zs_state"  # pane user option set by the agent's own hooks: idle | busy
PROFILE = "@zs_profile"  # pane user option: the readiness profile of the program in it
# Set by the agent in the same batch as its paste / its Enter: what this pane last got from
# us. They live and die with the pane, and no crash of ours can split them from the act.
PASTED, ENTERED = "@zs_pasted", "@zs_entered"
MARK = ("@zs_prompt", "@zs_first", "@zs_last")  # screen.Mark of the last paste

PROBE = "\t".join(
    f"#{{{f}}}"
    for f in (
        "pane_id",
        "pane_dead",
        "pane_in_mode",
        "pane_input_off",
        "cursor_x",
        "cursor_y",
        "history_size",
        STATE,
        PASTED,
        ENTERED,
        *MARK,
    )
)

# Only what the writers read from the snapshot; live state (cursor, hook, copy mode, input
# off) is asked per check with one display-message, since it changes between snapshots.
FIELDS = ("pane_id", "pane_dead", TAG, PROFILE, "window_activity")
FORMAT = "\t".join(f"#{{{f}}}" for f in FIELDS)

CHANNEL = "zmqswarm-panes"  # the wait-for channel pane hooks signal
HOOK_INDEX = 7351  # our slot in each hook array
HOOKS = ("pane-exited", "pane-died", "after-kill-pane")
RING = ("wait-for", "-S", CHANNEL)  # what the hooks run; `zs agent tag` runs it too

_STRUCTURAL = (
    "%window-close",
    "%unlinked-window-close",
    "%layout-change",
    "%sessions-changed",
    "%window-add",
    "%unlinked-window-add",
    "%window-pane-changed",
    "%pane-mode-changed",
)


class Pane(msgspec.Struct, frozen=True):
    id: str
    dead: bool
    tag: str
    profile: str
    activity: int  # wall-clock second of the window's last output (tmux keeps no per-pane one)


def parse_panes(lines: list[str]) -> dict[str, Pane]:
    """One ``list-panes -a -F FORMAT`` reply, by pane id (lines that do not parse are skipped)."""
    panes = {}
    for line in lines:
        f = line.split("\t")
        if len(f) != len(FIELDS) or not f[0].startswith("%"):
            continue
        activity = int(f[4]) if f[4].isdigit() else 0
        panes[f[0]] = Pane(f[0], f[1] == "1", f[2], f[3], activity)
    return panes


def parse_probe(info: list[str], rows: list[str], history: int) -> Probe | None:
    """A probe from its ``display-message`` line and capture (``history``: rows of history
    asked for); None if the pane was not there."""
    f = (info[0] if info else "").split("\t")
    if len(f) != 13 or not f[0].startswith("%"):
        return None
    x, y, size = (int(v) if v.isdigit() else 0 for v in f[4:7])
    return Probe(
        pane=f[0],
        dead=f[1] == "1",
        in_mode=f[2] not in ("", "0"),
        input_off=f[3] == "1",
        x=x,
        y=y,
        history=size,
        hook=f[7],
        pasted=f[8],
        entered=f[9],
        mark=Mark(f[10], f[11], f[12]) if f[8] else None,
        rows=rows,
        row=min(history, size) + y,
    )


class PaneWatch:
    def __init__(
        self,
        socket_name: str | None = None,
        *,
        socket_path: str | None = None,
        reconcile: float = 1.0,
        sample_every: float = 0.25,
    ) -> None:
        self.tmux = ControlClient(socket_name, socket_path=socket_path, on_notify=self._notified)
        self.bell = ControlClient(socket_name, socket_path=socket_path)  # blocks in wait-for
        self.rings = 0
        self._hooked = False  # our hooks are installed in the server we talk to
        self.reconcile = reconcile
        self.sample_every = sample_every
        self.panes: dict[str, Pane] = {}
        self.served: set[str] = set()  # panes the sampler keeps an eye on
        self._screens: dict[str, tuple[int, float]] = {}  # pane -> (screen hash, since)
        self._changed = asyncio.Event()
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.refresh()
        with contextlib.suppress(TmuxError):  # no server yet: the doorbell installs them later
            await self._set_hooks(install=True)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._reconcile(), name="zs-pane-reconcile"),
            loop.create_task(self._sampler(), name="zs-pane-sampler"),
            loop.create_task(self._doorbell(), name="zs-pane-doorbell"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TmuxError):
            if not await self._others_attached():
                await self._set_hooks(install=False)  # the last agent out takes them away
        await self.bell.close()
        await self.tmux.close()

    # -- what the writers ask -------------------------------------------------------------

    def tagged(self, name: str) -> Pane | None:
        """The live pane tagged ``@zs_agent=<name>`` (the lowest id if several)."""
        live = [p for p in self.panes.values() if p.tag == name and not p.dead]
        return min(live, key=lambda p: int(p.id[1:])) if live else None

    def tags(self) -> set[str]:
        return {p.tag for p in self.panes.values() if p.tag and not p.dead}

    def changed(self) -> asyncio.Event:
        """An event set at the next snapshot of ``panes``."""
        return self._changed

    async def sample(self, pane: str) -> tuple[list[str], float]:
        """The pane's screen now, and the loop time since which it has looked like this."""
        screen = await self.tmux.command("capture-pane", "-p", "-t", pane)
        return screen, self._seen(pane, screen)

    def _quiet_for(self, pane: str) -> float:
        """On first sight: how long the pane's window has shown no output, by tmux's
        whole-second ``window_activity`` (rounded down, so one second is taken off)."""
        info = self.panes.get(pane)
        if info is None or not info.activity:
            return 0.0
        return max(0.0, time.time() - info.activity - 1.0)

    async def probe(
        self, pane: str, *, history: int = 0, styled: bool = False
    ) -> tuple[Probe, list[str], float]:
        """The pane now, in one batch: its state and its screen (with ``history`` rows of
        history above), the screen with its attributes if ``styled`` (else []), and the loop
        time since which the screen has looked like this. Raises TmuxError if it is gone."""
        commands: list[tuple[str, ...]] = [("display-message", "-p", "-t", pane, PROBE)]
        commands.append(("capture-pane", "-p", "-t", pane, "-S", str(-history) if history else "0"))
        if styled:
            commands.append(("capture-pane", "-p", "-e", "-t", pane))
        _, answers = await self.tmux.batch(commands)
        probe = parse_probe(answers[0], answers[1], history)
        if probe is None:
            raise TmuxError("display-message", f"no such pane {pane}")
        since = self._seen(pane, probe.screen)
        return probe, answers[2] if styled else [], since

    def _seen(self, pane: str, screen: list[str]) -> float:
        now = asyncio.get_running_loop().time()
        digest = hash(tuple(screen))
        seen = self._screens.get(pane)
        if seen is None:
            self._screens[pane] = seen = (digest, now - self._quiet_for(pane))
        elif seen[0] != digest:
            self._screens[pane] = seen = (digest, now)
        return seen[1]

    async def capture_styled(self, pane: str) -> list[str]:
        """The screen with its SGR attributes (``capture-pane -e``), for dim-aware reading."""
        return await self.tmux.command("capture-pane", "-p", "-e", "-t", pane)

    def touched(self, pane: str) -> None:
        """We just wrote to ``pane``: whatever it shows next is not quiet yet (and the
        snapshot's window_activity predates the write: it must not vouch for quiet)."""
        self._screens[pane] = (0, asyncio.get_running_loop().time())  # 0: no screen's hash

    async def state(self, pane: str) -> tuple[int, str, bool]:
        """Live (cursor line index, hook state, in a mode or input off) of one pane."""
        fmt = f"#{{cursor_y}}\t#{{{STATE}}}\t#{{pane_in_mode}}\t#{{pane_input_off}}"
        lines = await self.tmux.command("display-message", "-p", "-t", pane, fmt)
        f = (lines[0] if lines else "").split("\t")
        if len(f) != 4:
            raise TmuxError("display-message", f"no such pane {pane}")
        y = int(f[0]) if f[0].isdigit() else -1
        return y, f[1], f[2] not in ("", "0") or f[3] == "1"

    async def resolve(self, target: str) -> str:
        """The immutable ``%id`` of a pane target such as ``work:1.0`` (names can drift to
        another pane later; ids never do). Raises TmuxError if there is no such pane.

        Asked through a forked ``tmux``, once: a target is relative to the current session,
        which for our control clients is the hidden anchor, and a bare ``c`` would match a
        window there; a forked client finds the session the way the user's shell would."""
        if target.startswith("%"):
            return target
        fmt = "#{pane_id}\t#{session_name}"
        lines = await self.tmux.run_subprocess("display-message", "-p", "-t", target, fmt)
        pane, _, session = (lines[0] if lines else "").partition("\t")
        if not pane.startswith("%"):
            raise TmuxError("display-message", f"no pane {target!r}")
        if session == ANCHOR:
            raise TmuxError("display-message", f"{target!r} names zmqswarm's own anchor pane")
        return pane

    async def history_shows(self, pane: str, marker: str) -> bool:
        """Whether ``marker`` appears anywhere in the pane's history and screen, whitespace
        aside (a terminal wraps a long line where it likes)."""
        lines = await self.tmux.command("capture-pane", "-p", "-J", "-S", "-", "-t", pane)
        return squeeze(marker) in squeeze("".join(lines))

    async def refresh(self) -> None:
        try:
            lines = await self.tmux.command("list-panes", "-a", "-F", FORMAT)
        except TmuxError as exc:
            log.warning("list-panes failed: %s", exc)  # keep the last snapshot
            return
        self.panes = parse_panes(lines)
        for gone in set(self._screens) - set(self.panes):
            del self._screens[gone]
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- internals ------------------------------------------------------------------------

    async def _set_hooks(self, *, install: bool) -> None:
        """Install (or remove) our hooks. Raises TmuxError if there is no server to talk to;
        a hook this tmux does not know is only logged (the reconcile covers for it)."""
        hook = " ".join(RING)
        for name in HOOKS:
            slot = f"{name}[{HOOK_INDEX}]"
            args = ("set-hook", "-g", slot, hook) if install else ("set-hook", "-gu", slot)
            try:
                await self.tmux.command(*args)
            except TmuxError as exc:
                if "invalid option" not in exc.message:
                    raise
                log.warning("tmux %s: %s", slot, exc.message)
        self._hooked = install

    async def _others_attached(self) -> bool:
        """Whether a control client of another process (another agent) is on the anchor."""
        lines = await self.tmux.command("list-clients", "-t", f"={ANCHOR}", "-F", "#{client_pid}")
        ours = ControlClient.own_pids()
        return any(int(pid) not in ours for pid in lines if pid.isdigit())

    async def _doorbell(self) -> None:
        seen = 0  # bell reconnections so far: one means a new server (or a new client)
        while True:
            try:
                await self.bell.command("wait-for", CHANNEL)  # answers at once ...
                if not self._hooked or self.bell.reconnects != seen:
                    seen = self.bell.reconnects
                    await self._set_hooks(install=True)  # hooks live in the server
                    self._dirty.set()  # and a new server's panes are news
                await self.bell.command("display-message", "-p", "rang")  # ... this, when rung
            except TmuxError:  # the server went away, or our client: try again soon
                self._hooked = False
                await asyncio.sleep(1.0)
                continue
            self.rings += 1
            self._dirty.set()

    def _notified(self, line: str) -> None:
        if line.startswith(_STRUCTURAL):
            self._dirty.set()

    async def _reconcile(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), self.reconcile)
                await asyncio.sleep(0.02)  # debounce: a kill-session closes many panes
            self._dirty.clear()
            await self.refresh()

    async def _sampler(self) -> None:
        while True:
            await asyncio.sleep(self.sample_every)
            for pane in list(self.served):
                if pane in self.panes:
                    with contextlib.suppress(TmuxError):
                        await self.sample(pane)
