"""The `zs` console script. `zs send` is what agents call in their tool calls, so it is
parsed here with argparse and never imports typer (typer + its adapters cost ~60 ms, more
than zmq and msgspec together); every other command goes to the typer app in cli/main.py.
tests/unit/test_cli.py checks that both parsers accept the same send options."""

from __future__ import annotations

import sys


def send_parser() -> object:
    import argparse

    from .sending import WAITS

    p = argparse.ArgumentParser(prog="zs send", description="Send one message.")
    p.add_argument("to")
    p.add_argument("message", nargs="?")
    p.add_argument("--router", "-r")
    p.add_argument("--from", "-f", dest="sender")
    p.add_argument("--wait", choices=WAITS, default="accepted")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("--json", dest="as_json", action="store_true")
    p.add_argument("--config")
    return p


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["send"] and not {"--help", "-h"} & set(argv):
        import argparse

        from .sending import do_send

        parser = send_parser()
        assert isinstance(parser, argparse.ArgumentParser)
        a = parser.parse_args(argv[1:])  # bad arguments: exit 2, like click
        do_send(a.to, a.message, a.router, a.sender, a.wait, a.timeout, a.as_json, a.config)
        sys.exit(0)
    from .main import app

    sys.exit(app())
