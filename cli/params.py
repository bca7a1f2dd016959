"""A command's arguments and options, declared once and without typer.

Two parsers are built from one declaration: the typer command (``typer_command``: its
signature, types and help come from the declaration) and, for ``zs send``, a typer-free
fast parser (``parse``) that handles the plain cases and gives up on anything else. A
command line the fast parser gives up on goes to the typer command, so help, errors and
the rarer forms of click's syntax (``-rURL``, bundled short flags) are click's, word for
word, on every path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple


class Param(NamedTuple):
    """One argument (no ``flags``) or option of a command."""

    name: str  # the keyword the command's function takes
    help: str
    flags: tuple[str, ...] = ()
    type: type = str  # str, int, float, bool (a flag) or pathlib.Path
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] = ()
    min: float | None = None
    required: bool = False  # arguments only: options always have a default


def argument(name: str, help: str, *, metavar: str, required: bool = True) -> Param:
    return Param(name, help, metavar=metavar, required=required)


def option(
    name: str,
    *flags: str,
    help: str,
    type: type = str,
    default: Any = None,
    metavar: str | None = None,
    choices: tuple[str, ...] = (),
    min: float | None = None,
) -> Param:
    return Param(name, help, flags, type, default, metavar, choices, min)


def parse(params: Sequence[Param], argv: Sequence[str]) -> dict[str, Any] | None:
    """The keyword arguments ``argv`` means, exactly as click would parse them; None for
    anything else (help, an error, a form this parser leaves to click)."""
    by_flag = {flag: p for p in params if p.flags for flag in p.flags}
    positional = [p for p in params if not p.flags]
    values: dict[str, Any] = {p.name: p.default for p in params}
    given: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--":
            given += args
            break
        if arg[:1] != "-" or arg == "-":
            given.append(arg)
            continue
        flag, eq, attached = arg.partition("=") if arg[:2] == "--" else (arg, "", "")
        p = by_flag.get(flag)
        if p is None:  # -h, --help, an unknown option, or -rURL: click's to handle
            return None
        if p.type is bool:
            if eq:
                return None
            values[p.name] = True
            continue
        if not eq:
            if not args:
                return None
            attached = args.pop(0)  # click takes the next word, even one that starts with -
        value = _convert(p, attached)
        if value is None:
            return None
        values[p.name] = value
    if len(given) > len(positional):
        return None
    for p, word in zip(positional, given, strict=False):
        values[p.name] = word
    if any(p.required for p in positional[len(given) :]):
        return None
    return values


def _convert(p: Param, word: str) -> Any:
    if p.choices:
        return word if word in p.choices else None
    try:
        value = p.type(word)
    except ValueError:
        return None
    if p.min is not None and value < p.min:
        return None
    return value


def typer_info(p: Param) -> Any:
    """The ``typer.Option``/``typer.Argument`` for ``p``, also for hand-written typer
    signatures (``Annotated[bool, typer_info(VERBOSE)]``)."""
    import typer

    if not p.flags:
        return typer.Argument(help=p.help, metavar=p.metavar, show_default=False)
    metavar = p.metavar or ("[" + "|".join(p.choices) + "]" if p.choices else None)
    show = p.default is not None and p.type is not bool
    return typer.Option(*p.flags, help=p.help, metavar=metavar, min=p.min, show_default=show)


def typer_command(params: Sequence[Param], run: Callable[..., None]) -> Callable[..., None]:
    """A function typer turns into the command: ``run``'s docstring, and a signature built
    from ``params``, so typer parses what ``parse`` parses and explains the rest."""
    import inspect
    from typing import Annotated, Literal

    signature = []
    for p in params:
        kind: Any = Literal[p.choices] if p.choices else p.type
        if p.default is None and not p.required:
            kind = kind | None
        signature.append(
            inspect.Parameter(
                p.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if p.required else p.default,
                annotation=Annotated[kind, typer_info(p)],
            )
        )

    def command(**kwargs: Any) -> None:
        run(**kwargs)

    command.__signature__ = inspect.Signature(signature)  # type: ignore[attr-defined]
    command.__doc__ = run.__doc__
    return command
