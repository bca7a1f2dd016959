"""The `zs` console script. `zs send` is what agents call in their tool calls, so a plain
`zs send` is parsed here from cli/send.py's PARAMS without importing typer (typer and its
adapters cost more than zmq and msgspec together); help, errors, shell completion and every
other command go to the typer app in cli/main.py."""

from __future__ import annotations

import os
import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["send"] and "_ZS_COMPLETE" not in os.environ:
        from . import send
        from .params import parse

        values = parse(send.PARAMS, argv[1:])
        if values is not None:
            send.run(**values)
            sys.exit(0)
    from .main import app

    app(prog_name="zs")
