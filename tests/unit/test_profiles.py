"""Profiles are data: every one in configs/profiles loads, and reads screens as it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from zmqswarm import ConfigError
from zmqswarm.agent.profiles import load_profile, visible

PROFILES = sorted((Path(__file__).parents[2] / "configs" / "profiles").glob("*.toml"))


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_every_profile_loads_by_name(path: Path) -> None:
    load_profile(path.stem)


@pytest.mark.parametrize(
    ("profile", "line", "ready", "draft"),
    [
        ("shell", "user@host:~/src$ ", True, ""),
        ("shell", "user@host:~/src$ git sta", False, "git sta"),
        ("shell", "compiling 3/17 ...", False, ""),
        ("shell", "root@box:/# ", True, ""),
        ("python", ">>> ", True, ""),
        ("python", ">>> import o", False, "import o"),
        ("python", "... ", False, ""),
        ("plain", "anything at all", True, ""),
    ],
)
def test_profiles_read_cursor_lines(profile: str, line: str, ready: bool, draft: str) -> None:
    screen = load_profile(profile).read(line)
    assert (screen.ready, screen.draft) == (ready, draft)


def test_bad_profiles_fail_loudly(tmp_path: Path) -> None:
    typo = tmp_path / "typo.toml"
    typo.write_text("quite = 0.2\n")
    with pytest.raises(ConfigError):
        load_profile(str(typo))
    regex = tmp_path / "regex.toml"
    regex.write_text("prompt = '(unclosed'\n")
    with pytest.raises(ConfigError, match="bad prompt regex"):
        load_profile(str(regex))
    with pytest.raises(ConfigError, match="cannot read"):
        load_profile("no-such-profile")


DIM, RESET = "\x1b[2m", "\x1b[0m"
CLAUDE_IDLE = [
    "⏺ Done. The tests pass.",
    "",
    "╭──────────────────────────────────────────────╮",
    f'│ > {DIM}Try "refactor client.py"{RESET}                  │',
    "╰──────────────────────────────────────────────╯",
    f"  {DIM}? for shortcuts{RESET}",
]


@pytest.mark.parametrize(
    ("profile", "screen", "ready", "draft", "busy"),
    [
        ("claude-code", CLAUDE_IDLE, True, "", False),
        ("claude-code", [*CLAUDE_IDLE[:3], "│ > git push --for         │", *CLAUDE_IDLE[4:]],
         False, "git push --for", False),
        ("claude-code", ["✻ Thinking… (12s · esc to interrupt)", *CLAUDE_IDLE[2:]],
         True, "", True),
        ("codex", ["• Ran tests", "", f"› {DIM}Ask Codex to do anything{RESET}", "",
                   f"  {DIM}⏎ send   ⌃J newline{RESET}"], True, "", False),
        ("codex", ["• Working (4s • Esc to interrupt)", "", "› "], True, "", True),
        # Claude Code 2.1 as captured (-e): each word of its grey hint coloured on its own.
        ("claude-code", ["❯ ", "\x1b[39m  \x1b[38;5;246mesc\x1b[39m \x1b[38;5;246mto\x1b[39m "
                         "\x1b[38;5;246minterrupt\x1b[39m"], True, "", True),
        ("codex", ["› fix the flaky te"], False, "fix the flaky te", False),
        ("aider", ["Tokens: 2.1k sent, 310 received.", "", "> "], True, "", False),
        ("aider", ["architect> add a retry"], False, "add a retry", False),
        ("aider", ["Waiting for gpt-5", "> "], True, "", True),
        ("ipython", ["In [3]: "], True, "", False),
        ("ipython", ["In [3]: import o"], False, "import o", False),
        ("ipython", ["   ...: "], False, "", False),
    ],
)  # fmt: skip
def test_agent_tuis_read_their_screens(
    profile: str, screen: list[str], ready: bool, draft: str, busy: bool
) -> None:
    p = load_profile(profile)
    state = p.read_screen(screen, len(screen) - 1)
    assert (state.ready, state.draft) == (ready, draft)
    assert p.shows_busy(screen) == busy


def test_visible_drops_dim_and_grey_text_and_all_escapes() -> None:
    assert visible(f"> {DIM}placeholder{RESET}") == "> "
    assert visible("\x1b[90mhint\x1b[39m typed") == " typed"
    assert visible("\x1b[38;5;244mgrey\x1b[0m\x1b[1mbold\x1b[0m") == "bold"
    assert visible("\x1b[38;2;100;100;100mrgb grey\x1b[0m ok") == " ok"
    assert visible("\x1b[31mred\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07") == "red link"


def test_every_shipped_profile_bounds_its_waits_and_frames_to_fit() -> None:
    for path in PROFILES:
        p = load_profile(path.stem)
        assert p.max_hold > 0, path.stem  # every wait has an end
        assert p.multiline == "paste" or p.envelope != "line", path.stem
    line = load_profile("line")  # for programs that take one line at a time
    assert (line.envelope, line.multiline, line.echo) == ("prefix", "join", True)
    shell = load_profile("shell")
    assert shell.echo and shell.envelope == "line" and shell.envelope_prefix == "\n# "


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('multiline = "join"\n', "envelope cannot be a line of its own"),
        ('envelope = "prefix"\njoin-with = "\\n"\n', "join-with must not hold a newline"),
        ("max-hold = -1\n", "must be >= 0"),
        ('envelope = "above"\n', "Invalid enum value 'above'"),
    ],
)
def test_profiles_that_would_split_a_message_fail_loudly(
    tmp_path: Path, toml: str, error: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=error):
        load_profile(str(path))
