"""Exit codes of `zs` (documented in README) and the one place errors become them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

OK = 0
ERROR = 1  # anything unexpected
USAGE = 2  # bad arguments (typer/click uses 2 as well)
UNREACHABLE = 3  # router did not answer in time, or refused the session
FAILED = 4  # the message was refused, expired or is dead
IN_USE = 5  # a live router already holds the endpoint
CONFIG = 6  # the config file is invalid, or an endpoint cannot be bound
SPOOLED = 7  # the router did not answer: the message is kept in the sender's spool
DENIED = 8  # the router refused our CURVE key, or this name to it


def fail(code: int, message: str) -> SystemExit:
    """Print the one error line; return the exit to raise (typer lets SystemExit through,
    and the fast `zs send` path has no typer at all)."""
    sys.stderr.write(f"zs: {message}\n")
    return SystemExit(code)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Turn zmqswarm errors into one clear line on stderr and a documented exit code."""
    from zmqswarm.errors import (
        AccessDeniedError,
        ConfigError,
        DeliveryError,
        RouterInUseError,
        RouterUnavailableError,
        ZmqswarmError,
        ZsTimeoutError,
    )

    try:
        yield
    except ConfigError as exc:
        raise fail(CONFIG, str(exc)) from None
    except RouterInUseError as exc:
        raise fail(IN_USE, str(exc)) from None
    except DeliveryError as exc:
        raise fail(FAILED, str(exc)) from None
    except AccessDeniedError as exc:
        raise fail(DENIED, str(exc)) from None
    except (RouterUnavailableError, ZsTimeoutError) as exc:
        raise fail(UNREACHABLE, str(exc)) from None
    except ValueError as exc:
        raise fail(USAGE, str(exc)) from None
    except ZmqswarmError as exc:  # e.g. TmuxError: tmux's own words, one line
        raise fail(ERROR, str(exc)) from None
