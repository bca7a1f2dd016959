"""The CLI's parsers, help, errors and exit codes, in-process (typer's CliRunner) and, for
the console script's fast path, in a subprocess. Nothing here reaches a router."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from zmqswarm.cli import send
from zmqswarm.cli.common import target
from zmqswarm.cli.main import SETTINGS, Command, app
from zmqswarm.cli.params import parse, typer_command
from zmqswarm.transport import resolve_router_url

runner = CliRunner()
ZS = [sys.executable, "-m", "zmqswarm.cli"]


def send_app() -> tuple[typer.Typer, list[dict[str, Any]]]:
    """`zs send` built as cli/main.py builds it, recording what it is called with."""
    calls: list[dict[str, Any]] = []
    recorder = typer.Typer(rich_markup_mode=None, context_settings=SETTINGS)
    recorder.command(cls=Command)(typer_command(send.PARAMS, lambda **kw: calls.append(kw)))
    return recorder, calls


@pytest.mark.parametrize(
    "argv",
    [
        ["bob", "hi"],
        ["bob"],
        ["bob", "-"],
        ["", "hi"],
        ["--router=ipc:///x", "bob", "hi"],
        ["bob", "-r", "tcp://h:1", "-f", "alice", "hi"],
        ["bob", "--", "-5 degrees"],
        ["bob", "hi", "--from", "--json"],  # click takes the next word as the value
        ["bob", "hi", "--timeout", "1e1", "--json", "--json", "--allow-empty"],
        ["bob", "hi", "--wait", "none", "--wait", "delivered"],  # the last one wins
        ["bob", "hi", "--config", "zs.toml", "--timeout", "0"],
        ["bob", "hi", "--spool", "--from", "runner"],
        ["--flush"],
        [],  # TO is needed unless --flush: run() says so, on both paths alike
    ],
)
def test_the_fast_parser_reads_what_typer_reads(argv: list[str]) -> None:
    recorder, calls = send_app()
    result = runner.invoke(recorder, argv)
    assert result.exit_code == 0, result.output
    assert parse(send.PARAMS, argv) == calls[0]


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["bob", "hi", "extra"], 2),
        (["bob", "--wait", "forever"], 2),
        (["bob", "--timeout", "soon"], 2),
        (["bob", "--timeout", "-1"], 2),
        (["bob", "--nope"], 2),
        (["bob", "--json=yes"], 2),
        (["bob", "--router"], 2),
        (["bob", "-5"], 2),
        (["bob", "-h"], 0),
        (["--help"], 0),
        (["bob", "-rtcp://h:1"], 0),  # click's short form with its value attached
    ],
)
def test_the_fast_parser_leaves_the_rest_to_typer(argv: list[str], code: int) -> None:
    assert parse(send.PARAMS, argv) is None
    assert runner.invoke(send_app()[0], argv).exit_code == code


def test_zs_send_errors_read_the_same_on_the_fast_path_as_in_typer() -> None:
    for argv in (["send"], ["send", "bob", "--wait", "forever"], ["send", "bob", "-x"]):
        fast = subprocess.run([*ZS, *argv], capture_output=True, text=True, timeout=30)
        in_typer = runner.invoke(app, argv)
        assert (fast.returncode, in_typer.exit_code) == (2, 2)
        assert fast.stderr == in_typer.output
        if argv != ["send"]:
            assert fast.stderr.startswith(
                "Usage: zs send [OPTIONS] [TO] [MESSAGE]\nTry 'zs send -h'"
            )
    missing = runner.invoke(app, ["send"]).output
    assert missing == "zs: missing TO: zs send [OPTIONS] TO [MESSAGE] (or zs send --flush)\n"


def test_zs_send_h_and_help_work_through_the_console_script() -> None:
    for flag in ("-h", "--help"):
        done = subprocess.run([*ZS, "send", flag], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("Usage: zs send [OPTIONS] [TO] [MESSAGE]")


def command_paths() -> list[list[str]]:
    paths: list[list[str]] = []
    todo: list[tuple[list[str], Any]] = [([], typer.main.get_command(app))]
    while todo:
        path, command = todo.pop()
        paths.append(path)
        todo += [([*path, n], c) for n, c in getattr(command, "commands", {}).items()]
    return paths


def test_every_command_takes_h_and_help_and_its_help_reads_plainly() -> None:
    paths = command_paths()
    assert ["send"] in paths and ["agent", "tag"] in paths and len(paths) > 10
    for path in paths:
        for flag in ("-h", "--help"):
            result = runner.invoke(app, [*path, flag])
            assert result.exit_code == 0, (path, flag, result.output)
            assert result.output.startswith(f"Usage: {' '.join(['zs', *path])} ")
            for typer_ism in ("<bool>", "<str>", "<float>", "<int>", "<path>", "{"):
                assert typer_ism not in result.output, (path, result.output)


def test_help_texts_say_what_they_mean() -> None:
    send_help = runner.invoke(app, ["send", "-h"]).output
    assert "TOML config file ([client] table)." in send_help  # not eaten as rich markup
    assert "--wait [none|accepted|delivered]" in send_help
    router_help = runner.invoke(app, ["router", "-h"]).output
    assert "-v, --verbose        Log debug lines too." in router_help
    assert "-q, --warnings-only  Log only warnings and errors." in router_help


def test_bench_takes_the_keys_and_config_every_client_command_takes() -> None:
    """The same options as `zs send` and `zs peers`, word for word: one declaration each."""
    commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]

    def keys_options(name: str) -> list[tuple[Any, ...]]:
        wanted = ("curve_secret", "router_key", "config")
        params = {p.name: p for p in commands[name].params if p.name in wanted}
        return [(p.opts, p.metavar, p.help, p.default) for p in map(params.__getitem__, wanted)]

    assert keys_options("bench") == keys_options("send") == keys_options("peers")


def test_version_and_shell_completion() -> None:
    from zmqswarm import __version__

    version = runner.invoke(app, ["--version"])
    assert (version.exit_code, version.output) == (0, f"zs (zmqswarm) {__version__}\n")
    assert "--install-completion" in runner.invoke(app, ["--help"]).output
    env = {**os.environ, "_ZS_COMPLETE": "complete_bash", "COMP_CWORD": "1"}
    for words, offered in (("zs pe", "peers"), ("zs send bob --w", "--wait")):
        env["COMP_WORDS"], env["COMP_CWORD"] = words, str(len(words.split()) - 1)
        done = subprocess.run(ZS, env=env, capture_output=True, text=True, timeout=30)
        assert (done.returncode, done.stdout.split()) == (0, [offered]), done.stderr


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["send", "not a name", "hi"], "recipient"),
        (["send", "bob", "hi", "--from", "-alice"], "sender"),
        (["send", "x" * 129, "hi"], "recipient"),
        (["recv", "bob!"], "peer"),
    ],
)
def test_an_invalid_name_says_which_names_are_allowed(argv: list[str], what: str) -> None:
    result = runner.invoke(app, [*argv, "--router", "ipc:///nowhere/x"])
    assert result.exit_code == 2
    assert result.output.startswith(f"zs: invalid {what} name ")
    assert "a name is 1 to 128 characters, a letter or digit, then" in result.output
    assert result.output.count("\n") == 1


def test_an_empty_message_is_refused_unless_allowed() -> None:
    for argv, stdin in ((["send", "bob", ""], None), (["send", "bob"], "")):
        result = runner.invoke(app, [*argv, "--router", "ipc:///nowhere/x"], input=stdin)
        assert result.exit_code == 2
        assert result.output == "zs: empty message: nothing sent (--allow-empty sends it anyway)\n"


def test_an_oversized_message_names_the_limit_and_where_to_raise_it() -> None:
    result = runner.invoke(app, ["send", "bob", "--router", "ipc:///x"], input="x" * 2_000_000)
    assert result.exit_code == 4  # refused, as the router would
    assert result.output.startswith(
        "zs: message of 2000000 bytes is over the 1048576-byte limit (max_payload): raise"
        " max-payload in the [router] table of the config file"
    )


def test_bad_config_exits_6(tmp_path: Path) -> None:
    bad = tmp_path / "zs.toml"
    bad.write_text("[client]\nwindoww = 3\n")
    result = runner.invoke(app, ["send", "bob", "hi", "--config", str(bad)])
    assert result.exit_code == 6
    assert "windoww" in result.output


def test_errors_name_where_the_router_url_came_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.delenv("ZS_ROUTER", raising=False)
    cases = [
        ("ipc:///flag", None, "--router"),
        (None, "ipc:///configured", "[client] router in zs.toml"),
        (None, None, "the default (no --router, $ZS_ROUTER or config)"),
    ]
    for flag, configured, source in cases:
        assert target(flag, "zs.toml", configured) == (
            resolve_router_url(flag, configured),
            source,
        )
    monkeypatch.setenv("ZS_ROUTER", "ipc:///env")
    assert target(None, "zs.toml", "ipc:///configured") == ("ipc:///env", "$ZS_ROUTER")
    assert target("ipc:///flag", None, None).source == "--router"


def test_zs_send_never_imports_typer_click_or_rich() -> None:
    """The whole fast path, up to an error from the Client, without typer/click/rich."""
    code = (
        "import atexit, sys; atexit.register(lambda: print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('typer', 'rich', 'click'))));"
        " sys.argv = ['zs', 'send', 'bob', 'hi', '--router', 'garbage'];"
        " from zmqswarm.cli.entry import main; main()"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 6, done.stderr  # the Client's ConfigError, mapped
    assert done.stdout.strip() == "[]"
