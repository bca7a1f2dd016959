"""The tmux gateway: one persistent control-mode client (``tmux -C``) per tmux server.

A fork of ``tmux`` costs ~1.8 ms a command here; a command over a control client ~0.06 ms
(research/limits.md §6). The client attaches to a hidden anchor session (a bare ``tmux -C``
would create a stray session every time) with ``no-output,ignore-size``, writes one command
per line and pairs each ``%begin … %end|%error`` reply block with its command, in order.

Control-mode rules this module keeps (research/tmux-delivery.md §c, §5):
- every argument is quoted: an unquoted ``#`` starts a comment, ``;`` separates commands;
  bytes outside a small safe set travel as ``\\ooo`` octal escapes inside double quotes;
- an empty line detaches the client, so none is ever written;
- the error text of ``%error`` is the block's content;
- ``%exit`` (the server died or detached us) fails what is pending; the next command
  reconnects, and a plain subprocess serves meanwhile.

Other notifications (``%window-close``, ``%layout-change``...) go to ``on_notify`` if given.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import Callable

from zmqswarm.errors import ZmqswarmError

__all__ = ["ANCHOR", "ControlClient", "TmuxError", "quote", "tmux_argv"]

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


def command_line(args: tuple[str, ...]) -> bytes:
    if not args:
        raise ValueError("empty tmux command")  # an empty line would detach the client
    return (" ".join(quote(a) for a in args) + "\n").encode()


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
        self._pending: deque[tuple[str, asyncio.Future[list[str]]]] = deque()
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
        self._pending.append((args[0], future))
        proc.stdin.write(command_line(args))
        return await future

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
            )
            ready: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
            self._pending.append(("attach-session", ready))  # attaching answers with a block
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
        name, future = self._pending.popleft()
        if future.done():
            return  # the caller was cancelled
        if error:
            future.set_exception(TmuxError(name, "\n".join(lines) or "error"))
        else:
            future.set_result(lines)

    def _fail_pending(self, reason: str) -> None:
        while self._pending:
            name, future = self._pending.popleft()
            if not future.done():
                future.set_exception(TmuxError(name, reason))

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
