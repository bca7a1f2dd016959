"""`zs keys`: CURVE key pairs, and the allow list a router lets in."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from .exits import USAGE, exit_codes, fail

DIR_HELP = "Key directory (default: $XDG_CONFIG_HOME/zmqswarm/keys)."
ALLOW_HELP = "The router's allow list (default: KEYDIR/allow)."


def _key_dir(directory: Path | None) -> Path:
    from zmqswarm.keys import default_key_dir

    return directory or default_key_dir()


def new_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The key's name.")],
    directory: Annotated[Path | None, typer.Option("--dir", metavar="DIR", help=DIR_HELP)] = None,
) -> None:
    """Make a CURVE key pair: NAME.key (public, for the router's allow list) and
    NAME.key_secret (0600, never shared)."""
    from zmqswarm.keys import new_keys

    with exit_codes():
        public, secret = new_keys(name, _key_dir(directory))
    sys.stdout.write(f"public {public}\nsecret {secret}\n")


def trust_command(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="A public key file (NAME.key).")],
    allow: Annotated[Path | None, typer.Option("--allow", metavar="DIR", help=ALLOW_HELP)] = None,
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="Trust it under this name.")
    ] = None,
    directory: Annotated[Path | None, typer.Option("--dir", metavar="DIR", help=DIR_HELP)] = None,
) -> None:
    """Let a key in: copy its public file into the router's allow list. A running router
    sees it within a second."""
    from zmqswarm.keys import trust

    with exit_codes():
        target = trust(file, allow or _key_dir(directory) / "allow", name)
    sys.stdout.write(f"trusted {target}\n")


def revoke_command(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The key's name in the allow list.")],
    allow: Annotated[Path | None, typer.Option("--allow", metavar="DIR", help=ALLOW_HELP)] = None,
    pid: Annotated[
        int | None,
        typer.Option("--pid", metavar="PID", help="Signal this router (SIGHUP) to act at once."),
    ] = None,
    directory: Annotated[Path | None, typer.Option("--dir", metavar="DIR", help=DIR_HELP)] = None,
) -> None:
    """Take a key out of the allow list: a router reading it refuses the key and ends its
    sessions within a second (at once with --pid)."""
    path = (allow or _key_dir(directory) / "allow") / f"{name}.key"
    try:
        path.unlink()
    except FileNotFoundError:
        raise fail(USAGE, f"no key {name!r} in {path.parent}") from None
    if pid is not None:
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            raise fail(USAGE, f"no process {pid}: the key is removed from {path.parent}") from None
    sys.stdout.write(f"revoked {name}\n")


def list_command(
    directory: Annotated[Path | None, typer.Option("--dir", metavar="DIR", help=DIR_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """The keys in the key directory and in its allow list."""
    from zmqswarm.keys import list_keys

    base = _key_dir(directory)
    rows = [(k, "own") for k in list_keys(base)] + [
        (k, "allowed") for k in list_keys(base / "allow")
    ]
    out = sys.stdout
    for key, where in rows:
        if as_json:
            line = {"name": key.name, "public": key.public, "path": str(key.path)}
            line |= {"kind": "secret" if key.secret else "public", "in": where}
            out.write(json.dumps(line) + "\n")
        else:
            kind = "secret" if key.secret else "public"
            out.write(f"{key.name:<24} {where:<8} {kind:<7} {key.public}  {key.path}\n")
    if not rows and not as_json:
        sys.stderr.write(f"no keys in {base} (make one: zs keys new NAME)\n")
