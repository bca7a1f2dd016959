"""The CLI's parsers and exit codes, in-process (typer's CliRunner) and by import checks."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer
from typer.testing import CliRunner

from zmqswarm.cli.entry import send_parser
from zmqswarm.cli.main import app

runner = CliRunner()


def typer_send_options() -> set[str]:
    command: Any = typer.main.get_command(app)  # typer's vendored click Group
    send = command.commands["send"]
    return {opt for p in send.params if p.param_type_name == "option" for opt in p.opts}


def test_fast_send_parser_accepts_what_the_typer_command_accepts() -> None:
    parser = send_parser()
    assert isinstance(parser, argparse.ArgumentParser)
    fast = {s for a in parser._actions for s in a.option_strings} - {"-h", "--help"}
    assert fast == typer_send_options()


def test_bad_arguments_exit_2() -> None:
    assert runner.invoke(app, ["send"]).exit_code == 2  # no recipient
    assert runner.invoke(app, ["send", "bob", "hi", "--wait", "forever"]).exit_code == 2
    assert runner.invoke(app, ["recv", "bob", "--count", "many"]).exit_code == 2
    assert runner.invoke(app, ["frobnicate"]).exit_code == 2


def test_invalid_recipient_exits_2_with_one_line() -> None:
    result = runner.invoke(app, ["send", "not a name", "hi", "--router", "ipc:///nowhere/x"])
    assert result.exit_code == 2
    assert "invalid recipient name" in result.output


def test_bad_config_exits_6(tmp_path: Path) -> None:
    bad = tmp_path / "zs.toml"
    bad.write_text("[client]\nwindoww = 3\n")
    result = runner.invoke(app, ["send", "bob", "hi", "--config", str(bad)])
    assert result.exit_code == 6
    assert "windoww" in result.output


def test_zs_send_never_imports_typer_or_rich() -> None:
    code = (
        "import sys; sys.argv = ['zs', 'send', '--help']; import zmqswarm.cli.entry, "
        "zmqswarm.cli.sending, zmqswarm.client; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
