"""The tmux gateway: one persistent control-mode client (``tmux -C``) per tmux server.

A fork of ``tmux`` costs ~1.8 ms a command here; a command over a control client ~0.06 ms
(``python -m bench.tmux``). The client attaches to a hidden anchor session (a bare ``tmux -C``
would create a stray session every time) with ``no-output,ignore-size``, writes one command
per line and pairs each ``%begin … %end|%error`` reply block with its command, in order.

Control-mode rules this module keeps (tmux(1), CONTROL MODE; docs/agent.md, "tmux traffic"):
- every argument is quoted: an unquoted ``#`` starts a comment, ``;`` separates commands;
  bytes outside a small safe set travel as ``\\ooo`` octal escapes inside double quotes;
- an empty line detaches the client, so none is ever written;
- the error text of ``%error`` is the block's content;
- ``%exit`` (the server died or detached us) fails what is pending; the next command
  reconnects, and a plain subprocess serves meanwhile;
- a batch (several commands on one line) runs in one go in the server, no other client's
  command or key in between: tmux answers each command with a block of its own, stops the
  line at the first error, and ``if-shell -F`` answers with an empty block and then one per
  command of the branch it took. ``batch()`` ends every branch with a marker and collects
  blocks up to the marker or the first error.

A control client dies with the process that started it (Linux: ``PR_SET_PDEATHSIG``): an
agent killed with SIGKILL leaves no orphaned ``tmux -C`` behind to keep a server alive.

Other notifications (``%window-close``, ``%layout-change``...) go to ``on_notify`` if given.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import itertools
import os
import signal
import sys
import weakref
from collections import deque
from collections.abc import Callable, Sequence

from zmqswarm.errors import ZmqswarmError

__all__ = ["ANCHOR", "ControlClient", "TmuxError", "all_of", "quote", "tmux_argv"]

ANCHOR = "_zmqswarm"  # the hidden session control clients attach to

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 _.,:/=%@+-")


class TmuxError(ZmqswarmError):
    """tmux refused a command (``%error``), or the server could not be reached."""

    def __init__(self, command: str, message: str) -> None:
        super().__init__(f"tmux {command}: {message}")
        self.command = command
        self.message = message


def quote(arg: str) -> str:
    """One tmux command-language word holding exactly ``arg``, whatever its bytes."""
    data = arg.encode()
    return '"' + "".join(chr(b) if b in _SAFE else f"\\{b:03o}" for b in data) + '"'


def tmux_argv(
    socket_name: str | None = None, socket_path: str | None = None, tmux: str = "tmux"
) -> list[str]:
    """``tmux`` with the server chosen: ``-S path`` wins over ``-L name``; neither: default."""
    if socket_path:
        return [tmux, "-S", socket_path]
    if socket_name:
        return [tmux, "-L", socket_name]
    return [tmux]


def words(args: tuple[str, ...]) -> str:
    if not args:
        raise ValueError("empty tmux command")  # an empty line would detach the client
    return " ".join(quote(a) for a in args)


def command_line(args: tuple[str, ...]) -> bytes:
    return (words(args) + "\n").encode()


def command_list(commands: Sequence[tuple[str, ...]]) -> str:
    """Several commands as one tmux command list (one word each for ``if-shell``)."""
    return " ; ".join(words(c) for c in commands)


def all_of(*conditions: str) -> str:
    """A format that is 1 when every condition format is (``#{&&:}`` takes two)."""
    out = conditions[-1]
    for cond in reversed(conditions[:-1]):
        out = f"#{{&&:{cond},{out}}}"
    return out


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the child
    """In the forked tmux client: ask Linux for SIGTERM when the agent dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the prctl
        os._exit(1)


class ControlClient:
    """Commands to one tmux server over a persistent control-mode client.

    Args:
        socket_name: ``tmux -L`` name (or ``socket_path`` for ``-S``); None: the default.
        tmux: the tmux binary.
    """

    _all: weakref.WeakSet[ControlClient] = weakref.WeakSet()

    @classmethod
    def own_pids(cls) -> set[int]:
        """The tmux client processes of this process's control clients (``#{client_pid}``
        in ``list-clients``), to tell them from other agents' clients."""
        return {c._proc.pid for c in cls._all if c._proc is not None}

    def __init__(
        self,
        socket_name: str | None = None,
        *,
        socket_path: str | None = None,
        tmux: str = "tmux",
        on_notify: Callable[[str], None] | None = None,
    ) -> None:
        self.base = tmux_argv(socket_name, socket_path, tmux)
        self.on_notify = on_notify
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: deque[_Pending] = deque()
        self._markers = itertools.count(1)
        self._token = os.urandom(6).hex()
        self._connecting: asyncio.Lock | None = None  # asyncio's, per event loop: not a thread lock
        self.reconnects = 0
        self.fallbacks = 0
        ControlClient._all.add(self)

    # -- commands -------------------------------------------------------------------------

    async def command(self, *args: str) -> list[str]:
        """Run one tmux command; return its output lines. Raises TmuxError on ``%error``."""
        try:
            proc = await self._connected()
        except TmuxError:
            self.fallbacks += 1
            return await self.run_subprocess(*args)  # no control client: fork meanwhile
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        assert proc.stdin is not None
        self._pending.append(_Pending(args[0], future))
        proc.stdin.write(command_line(args))
        return await future

    async def batch(
        self,
        commands: Sequence[tuple[str, ...]],
        *,
        when: tuple[str, str] | None = None,
        otherwise: Sequence[tuple[str, ...]] = (),
    ) -> tuple[bool, list[list[str]]]:
        """Run ``commands`` on one line, in one go in the server; with ``when=(pane,
        format)`` only if the format is true for that pane then, else ``otherwise``.

        Returns (whether ``commands`` ran, the output lines of each command that ran, in
        order). Raises TmuxError at the first command that fails; the rest did not run."""
        marker = f"zs-{self._token}-{next(self._markers)}"  # no screen shows this by chance
        yes, no = ("display-message", "-p", f"{marker}:1"), ("display-message", "-p", f"{marker}:0")
        if when is None:
            line = command_list([*commands, yes])
        else:
            pane, fmt = when
            then = command_list([*commands, yes])
            other = command_list([*otherwise, no])
            line = words(("if-shell", "-F", "-t", pane, fmt, then, other))
        proc = await self._connected()  # no fork fallback: a batch needs block boundaries
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        assert proc.stdin is not None
        self._pending.append(_Pending("batch", future, marker=marker, blocks=[]))
        proc.stdin.write((line + "\n").encode())
        ran, answers = _batch_result(await future, marker)
        return ran, answers[1:] if when is not None else answers  # not if-shell's own block

    async def run_subprocess(self, *args: str, stdin: bytes | None = None) -> list[str]:
        """The fallback (and the way to pass a body too large for a command line)."""
        proc = await asyncio.create_subprocess_exec(
            *self.base,
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(stdin)
        if proc.returncode:
            raise TmuxError(args[0], err.decode(errors="replace").strip() or "failed")
        return out.decode(errors="replace").splitlines()

    # -- connection -----------------------------------------------------------------------

    async def _connected(self) -> asyncio.subprocess.Process:
        if self._proc is not None and self._proc.returncode is None:
            return self._proc
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._proc is not None and self._proc.returncode is None:
                return self._proc
            again = self._proc is not None
            await self._ensure_anchor()
            proc = await asyncio.create_subprocess_exec(
                *self.base,
                "-C",
                "attach-session",
                "-t",
                ANCHOR,
                "-f",
                "no-output,ignore-size",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                limit=1 << 24,  # a captured line can be long
                preexec_fn=_child_setup(),
            )
            ready: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
            self._pending.append(_Pending("attach-session", ready))  # it answers with a block
            self._proc = proc
            self._reader = asyncio.create_task(self._read(proc), name="tmux-control-reader")
            await ready
            self.reconnects += again  # counted once connected, not per failed attempt
            return proc

    async def _ensure_anchor(self) -> None:
        try:
            await self.run_subprocess("has-session", "-t", f"={ANCHOR}")
        except TmuxError:
            try:  # -N: never start a tmux server of our own; wait for the user's
                await self.run_subprocess(
                    "-N", "new-session", "-d", "-s", ANCHOR, "-n", ANCHOR, "exec sleep 2147483647"
                )
            except TmuxError as exc:
                if "duplicate session" not in exc.message:
                    raise

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        block: list[str] | None = None
        reason = "control client exited"
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                break
            line = raw.decode(errors="replace").rstrip("\n")
            if block is not None:
                if line.startswith(("%end ", "%error ")):
                    self._answer(block, error=line.startswith("%error"))
                    block = None
                else:
                    block.append(line)
            elif line.startswith("%begin "):
                block = []
            elif line.startswith("%exit"):
                reason = line[len("%exit") :].strip() or reason
            elif self.on_notify is not None:
                self.on_notify(line)
        self._fail_pending(reason)

    def _answer(self, lines: list[str], *, error: bool) -> None:
        if not self._pending:
            return  # a block nobody asked for
        head = self._pending[0]
        if head.blocks is not None and not error:
            head.blocks.extend([*lines, "\x00"])  # NUL: a block boundary no output holds
            if not (lines and lines[0].startswith(f"{head.marker}:")):
                return  # more blocks of this batch to come
        self._pending.popleft()
        if head.future.done():
            return  # the caller was cancelled
        if error:
            head.future.set_exception(TmuxError(head.name, "\n".join(lines) or "error"))
        else:
            head.future.set_result(head.blocks if head.blocks is not None else lines)

    def _fail_pending(self, reason: str) -> None:
        while self._pending:
            head = self._pending.popleft()
            if not head.future.done():
                head.future.set_exception(TmuxError(head.name, reason))

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()  # EOF detaches the control client
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 2)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            await self._reader
            self._reader = None


class _Pending:
    """A command waiting for its answer; a batch collects blocks up to its marker."""

    __slots__ = ("blocks", "future", "marker", "name")

    def __init__(
        self,
        name: str,
        future: asyncio.Future[list[str]],
        *,
        marker: str = "",
        blocks: list[str] | None = None,
    ) -> None:
        self.name = name
        self.future = future
        self.marker = marker
        self.blocks = blocks


def _batch_result(lines: list[str], marker: str) -> tuple[bool, list[list[str]]]:
    """Split a batch's collected lines into the answers of its commands, minus the marker."""
    blocks: list[list[str]] = [[]]
    for line in lines:
        if line == "\x00":
            blocks.append([])
        else:
            blocks[-1].append(line)
    blocks.pop()  # after the last boundary: nothing
    last = blocks.pop()
    return last == [f"{marker}:1"], blocks


def _child_setup() -> Callable[[], None] | None:
    if not sys.platform.startswith("linux"):
        return None  # elsewhere an orphaned client lives until the server goes
    parent = os.getpid()
    return lambda: _die_with_parent(parent)
