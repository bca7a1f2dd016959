"""Profiles are data: every one in configs/profiles loads, and reads screens as it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from zmqswarm import ConfigError
from zmqswarm.profiles import load_profile

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
