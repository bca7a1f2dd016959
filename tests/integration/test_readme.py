"""README.md as a user reads it: every Python example runs verbatim against a real router and
ends by itself; every shell command it names exists with the options it shows, and those that
end by themselves run verbatim; the exit codes, the default endpoint and the links are true."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from zmqswarm.cli import exits
from zmqswarm.transport import default_router_url

from ..helpers import Procs, wait_for

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
COMMANDS = {
    *("router", "recv", "send", "pub", "sub", "dead", "peers", "monitor", "demo", "agent"),
    *("tag", "hook", "keys", "new", "trust", "revoke", "list", "bench"),
}


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", README, re.M | re.S)


def shell_lines() -> list[str]:
    """Every command line of the README's shell blocks, comments stripped."""
    lines = (line.split("  #")[0].strip() for b in blocks("sh") for line in b.splitlines())
    return [line for line in lines if line]


def zs_command(line: str) -> tuple[list[str], list[str]]:
    """The `zs` subcommand path a line runs (["agent", "tag"]) and the options it passes."""
    words = shlex.split(line.split("|")[-1])
    assert words[0] == "zs", line
    path = []
    for word in words[1:]:
        if word not in COMMANDS:
            break
        path.append(word)
    return path, [w.split("=")[0] for w in words if w.startswith("-")]


def env(url: str) -> dict[str, str]:
    path = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    state = str(Path(url[len("ipc://") :]).parent / "state")  # `zs send --spool` writes there
    return {**os.environ, "ZS_ROUTER": url, "PATH": path, "XDG_STATE_HOME": state}


def run(line: str, url: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """One README line, verbatim, in a shell."""
    return subprocess.run(
        ["bash", "-c", line], env=env(url), capture_output=True, text=True, timeout=timeout
    )


# -- Python examples -------------------------------------------------------------------------

# What each Python block prints, in README order: a new example comes with its expected output.
PRINTS = [
    r"alice hello bob alice/[0-9a-f]+/1\n",
    r"102 b'call' accepted\n",
    r"passed in 3 s\n",
    r"carol hi dave\n",
    r"\[\]\nbuild 42 passed\n",
    r"(\d+\.\d+ \{.*\}\n){3}",
]


def test_every_python_example_is_checked() -> None:
    assert len(blocks("python")) == len(PRINTS)


@pytest.mark.parametrize(("index", "expected"), list(enumerate(PRINTS)))
def test_python_example_runs_verbatim(
    procs: Procs, tmp_path: Path, index: int, expected: str
) -> None:
    code = blocks("python")[index]
    procs.router()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env(procs.url),
        capture_output=True,
        text=True,
        timeout=20,
        cwd=tmp_path,  # where an example's files (a spool) go
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warning, no message left unreceipted
    assert re.fullmatch(expected, result.stdout), result.stdout
    assert took < 10, f"example {index} took {took:.1f} s"


# -- shell commands --------------------------------------------------------------------------


def test_the_two_make_commands_and_the_install_are_there() -> None:
    lines = shell_lines()
    assert {"make demo", "make test", "pip install ."} <= set(lines)
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    assert (ROOT / "pyproject.toml").exists()


@pytest.mark.parametrize("line", [x for x in shell_lines() if re.search(r"(^|\| )zs ", x)])
def test_every_zs_command_exists_with_its_options(line: str) -> None:
    path, options = zs_command(line)
    result = subprocess.run(
        [str(BIN / "zs"), *path, "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    for option in options:
        assert re.search(rf"(^|[\s,]){re.escape(option)}\b", result.stdout), (line, option)


def test_the_quickstart_runs_verbatim(procs: Procs) -> None:
    """The commands that end by themselves run as written; `zs recv bob` runs as written in the
    background (a second terminal) and shows every message sent to bob, in order."""
    lines = [x for x in shell_lines() if x.startswith(("zs ", "echo "))]
    assert "zs router" in lines and "zs recv bob" in lines
    procs.router()
    recv = subprocess.Popen(
        ["bash", "-c", "zs recv bob"],
        env=env(procs.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, ended below
    )
    procs.children.append(recv)
    out: list[str] = []  # what bob's terminal shows
    reader = threading.Thread(target=lambda: out.extend(x.rstrip("\n") for x in recv.stdout or ()))
    reader.start()
    try:
        sent = []
        for line in lines:
            path, options = zs_command(line)
            if path[0] in ("send", "peers", "dead") or (path, options) == (["monitor"], ["--once"]):
                result = run(line, procs.url)
                assert result.returncode == 0, (line, result.stderr)
                if "--flush" in options:
                    assert result.stdout == ""  # the router was up: the spool kept nothing
                elif path == ["send"]:
                    assert re.fullmatch(r"\S+/[0-9a-f]+/1\n", result.stdout), result.stdout
                    sent.append(line.split('"')[1])  # the quoted message, or echo's
                if path == ["peers"]:
                    assert "bob" in result.stdout
        assert sent == ["hello bob", "from stdin", "build done", "deploy done"]

        def shown() -> list[str]:  # "sender: text"; "from stdin\n" prints an empty line too
            return [x.split(": ", 1)[-1] for x in out if x]

        wait_for(lambda: len(shown()) >= len(sent), 10, "bob's messages")
        assert shown() == sent
    finally:
        os.killpg(recv.pid, signal.SIGTERM)
        reader.join(10)


# -- facts the README states -----------------------------------------------------------------


def test_exit_codes_are_the_clis() -> None:
    table = README.split("## Exit codes")[1].split("##")[0]
    codes = [int(m) for m in re.findall(r"^\| (\d) \|", table, re.M)]
    defined = {exits.OK, exits.ERROR, exits.USAGE, exits.UNREACHABLE, exits.FAILED}
    assert codes == sorted(defined | {exits.IN_USE, exits.CONFIG, exits.SPOOLED, exits.DENIED})


def test_the_default_endpoint_is_the_one_stated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    stated = "ipc://$XDG_RUNTIME_DIR/zmqswarm-$UID/router"
    assert stated in README
    expected = stated.replace("$XDG_RUNTIME_DIR", "/run/user/1000").replace(
        "$UID", str(os.getuid())
    )
    assert default_router_url() == expected


def test_links_stay_inside_the_repository() -> None:
    for target in re.findall(r"\]\(([^)]+)\)", README):
        assert not target.startswith(("/", "..")) and (ROOT / target).exists(), target
    assert "../" not in README
