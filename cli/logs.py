"""Logging of every `zs` process: one format; routine lines at INFO, -v/-q to choose."""

from __future__ import annotations

import logging

from .params import option

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

VERBOSE = option(
    "verbose", "--verbose", "-v", type=bool, default=False, help="Log debug lines too."
)
# Not --quiet: `zs agent --quiet SECONDS` is the pane's quiet period.
QUIET = option(
    "warnings_only",
    "--warnings-only",
    "-q",
    type=bool,
    default=False,
    help="Log only warnings and errors.",
)


def setup(
    *, verbose: bool = False, warnings_only: bool = False, default: int = logging.INFO
) -> None:
    """Log to stderr in FORMAT: DEBUG with -v, WARNING with -q, else ``default``."""
    level = logging.DEBUG if verbose else logging.WARNING if warnings_only else default
    logging.basicConfig(level=level, format=FORMAT)
