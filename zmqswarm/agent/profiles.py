"""Agent profiles: how to tell that the program in a pane can take a message. Data, in TOML
(configs/profiles/*.toml), loaded into a frozen Struct; unknown keys fail loudly.

A profile says how long the screen must be quiet, optionally a ``prompt`` regex for the
cursor line (with a ``draft`` group: what a human has typed; non-empty means wait), whether
the program shows what is typed (``echo``: then the agent checks its paste is alone in the
input line before the Enter), the envelope's form (its own line, a prefix on the body's
first line, or none) and what becomes of a multi-line body in a program that cannot take
one paste of several lines, and how long a message may wait for the pane (``max-hold``).

Full-screen agent TUIs (Claude Code, Codex) draw their composer anywhere and grey out
placeholder text: ``prompt-anywhere`` looks for the prompt on any line, bottom up, and
``ignore-dim`` reads the screen with its attributes and drops dim/grey text first, so a
placeholder ("Try \"fix lint errors\"") is not taken for a human's draft.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Literal

import msgspec

from zmqswarm.errors import ConfigError

__all__ = ["Profile", "Screen", "load_profile", "profile_dirs", "visible"]


Envelope = Literal["line", "prefix", "none"]
Multiline = Literal["paste", "join", "file"]


class Profile(msgspec.Struct, forbid_unknown_fields=True, rename="kebab", frozen=True):
    quiet: float = 0.2  # seconds the screen must be unchanged
    prompt: str | None = None  # regex for the cursor line when ready; group "draft"
    busy: str | None = None  # regex: anywhere on the screen means working (spinner, "esc to...")
    envelope_prefix: str = ""
    # line: the envelope on a line of its own above the body; prefix: before the body's
    # first line ("<envelope> » <body>"); none: the body alone.
    envelope: Envelope = "line"
    # A body of several lines: paste it so (the program takes a bracketed paste whole), join
    # its lines with ``join-with`` into one, or put it in a file and paste a pointer line.
    multiline: Multiline = "paste"
    join_with: str = " ⏎ "
    echo: bool = False  # the program shows pasted text as it is, at the cursor
    max_hold: float = 300.0  # seconds a message may wait for the pane; 0: no bound
    settle: float = 0.05  # seconds between the paste and the Enter
    # >0: each TAB becomes this many spaces. For programs that take a paste as typing (no
    # bracketed paste), where a TAB is the completion key and would never arrive.
    expand_tabs: int = 0
    prompt_anywhere: bool = False  # the prompt may be on any line (bottom-most match wins)
    ignore_dim: bool = False  # dim/grey text (placeholders) is not part of a draft

    def shows_busy(self, screen: list[str]) -> bool:
        """Whether a busy marker shows. Dim text counts here (Claude Code draws "esc to
        interrupt" grey); escape sequences do not (it colours each word on its own)."""
        if self.busy is None:
            return False
        pattern = _compiled(self.busy)
        return any(pattern.search(_OTHER_ESC.sub("", line)) for line in screen)

    def read_screen(self, screen: list[str], cursor: int) -> Screen:
        """What the screen says; ``screen`` holds SGR sequences if ``ignore_dim`` is set."""
        if self.ignore_dim:
            screen = [visible(line) for line in screen]
        if not self.prompt_anywhere:
            return self.read(screen[cursor] if 0 <= cursor < len(screen) else "")
        for line in reversed(screen):
            state = self.read(line)
            if state.ready or state.draft:
                return state
        return Screen(ready=False, draft="")

    def read(self, cursor_line: str) -> Screen:
        """What the cursor line says: ready, a draft to protect, or busy."""
        if self.prompt is None:
            return Screen(ready=True, draft="")
        match = _compiled(self.prompt).search(cursor_line.rstrip())
        if match is None:
            return Screen(ready=False, draft="")
        draft = (match.groupdict().get("draft") or "").strip()
        return Screen(ready=not draft, draft=draft)


class Screen(msgspec.Struct, frozen=True):
    ready: bool
    draft: str


def profile_dirs() -> list[Path]:
    """Where profiles are looked up by name: $ZS_PROFILES, then configs/profiles of the tree
    this package runs from."""
    dirs = [Path(p) for p in os.environ.get("ZS_PROFILES", "").split(os.pathsep) if p]
    return [*dirs, Path(__file__).resolve().parents[2] / "configs" / "profiles"]


def load_profile(name_or_path: str) -> Profile:
    path = Path(name_or_path)
    if not path.suffix:
        found = [d / f"{name_or_path}.toml" for d in profile_dirs()]
        path = next((p for p in found if p.exists()), found[-1])
    try:
        profile = msgspec.toml.decode(path.read_bytes(), type=Profile)
    except OSError as exc:
        raise ConfigError(f"profile {name_or_path!r}: cannot read {path}: {exc.strerror}") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(f"profile {path}: {exc}") from exc
    for key, regex in (("prompt", profile.prompt), ("busy", profile.busy)):
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ConfigError(f"profile {path}: bad {key} regex: {exc}") from exc
    if min(profile.quiet, profile.settle, profile.expand_tabs, profile.max_hold) < 0:
        raise ConfigError(f"profile {path}: quiet, settle, expand-tabs and max-hold must be >= 0")
    if profile.multiline != "paste" and profile.envelope == "line":
        raise ConfigError(
            f"profile {path}: multiline = {profile.multiline!r} is for programs that take one"
            ' line at a time: their envelope cannot be a line of its own (envelope = "prefix"'
            ' or "none")'
        )
    if "\n" in profile.join_with:
        raise ConfigError(f"profile {path}: join-with must not hold a newline")
    return profile


_SGR = re.compile(r"\x1b\[([0-9;:]*)m")
_OTHER_ESC = re.compile(r"\x1b(?:\[[0-9;:?]*[A-Za-z]|\][^\x07\x1b]*(?:\x07|\x1b\\)|.)")


def visible(line: str) -> str:
    """``line`` (from ``capture-pane -e``) without its escape sequences and without the
    text drawn dim (SGR 2), bright black (90) or grey (256-colour 8 and 240-250, or an RGB
    grey darker than #a0a0a0): how TUIs draw placeholders and hints."""
    out: list[str] = []
    dim = False
    pos = 0
    for m in _SGR.finditer(line):
        if not dim:
            out.append(line[pos : m.start()])
        pos = m.end()
        dim = _dim_after(m.group(1), dim)
    if not dim:
        out.append(line[pos:])
    return _OTHER_ESC.sub("", "".join(out))


def _dim_after(params: str, dim: bool) -> bool:
    codes = [int(c) if c.isdigit() else 0 for c in params.replace(":", ";").split(";")]
    i = 0
    while i < len(codes):
        c = codes[i]
        if c in (0, 22, 39):
            dim = False
        elif c in (2, 90):
            dim = True
        elif c in (30, 31, 32, 33, 34, 35, 36, 37, 91, 92, 93, 94, 95, 96, 97):
            dim = False
        elif c == 38 and i + 2 < len(codes) and codes[i + 1] == 5:
            n = codes[i + 2]
            dim = n == 8 or 240 <= n <= 250
            i += 2
        elif c == 38 and i + 4 < len(codes) and codes[i + 1] == 2:
            r, g, b = codes[i + 2 : i + 5]
            dim = r == g == b and r < 160
            i += 4
        i += 1
    return dim


@functools.lru_cache(maxsize=64)
def _compiled(regex: str) -> re.Pattern[str]:
    return re.compile(regex)
