"""What the commands that talk to a router share: their common options, which router they
reach and where its URL came from, name checks, and payloads as JSON. No typer here:
``zs send``'s fast path imports this module."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

from .exits import USAGE, fail

if TYPE_CHECKING:
    from zmqswarm.config import ClientConfig
    from zmqswarm.keys import ClientKeys
from .params import Param, option

ROUTER = option(
    "router",
    "--router",
    "-r",
    metavar="URL",
    help="Router URL, e.g. ipc:///tmp/zs/router or tcp://host:5555"
    " (default: $ZS_ROUTER, then the config's [client] router, then a per-user ipc socket).",
)
# A str, not a Path: pathlib is ~10 ms of `zs send`'s start-up where nothing else imports it.
CONFIG = option("config", "--config", metavar="FILE", help="TOML config file ([client] table).")
CURVE_SECRET = option(
    "curve_secret",
    "--curve-secret",
    metavar="FILE",
    help="Our CURVE secret key file (`zs keys new`), for a router that requires keys"
    " (default: $ZS_CURVE_SECRET, then the config's [client] curve-secret).",
)
ROUTER_KEY = option(
    "router_key",
    "--router-key",
    metavar="FILE",
    help="The router's CURVE public key file (default: $ZS_ROUTER_KEY, then the config's"
    " [client] router-key).",
)
SECURITY = (CURVE_SECRET, ROUTER_KEY)


def as_json(help: str) -> Param:
    return option("as_json", "--json", type=bool, default=False, help=help)


def timeout(default: float | None, help: str) -> Param:
    return option(
        "timeout", "--timeout", type=float, default=default, min=0, metavar="SECONDS", help=help
    )


def keys(secret: str | None, router_key: str | None, client: ClientConfig) -> ClientKeys | None:
    """The CURVE keys a command connects with: its flags, else the environment, else the
    config; None (a plain connection) when none names any."""
    from zmqswarm.keys import client_keys

    return client_keys(secret, router_key, configured=(client.curve_secret, client.router_key))


class Target(NamedTuple):
    """The router a command talks to, and where its URL came from (for error messages)."""

    url: str
    source: str


def target(flag: str | None, config: str | None, configured: str | None) -> Target:
    """The URL ``zmqswarm.transport.resolve_router_url`` picks, in its order, and why."""
    from zmqswarm.transport import ENV_ROUTER, default_router_url

    if flag:
        return Target(flag, "--router")
    if env := os.environ.get(ENV_ROUTER):
        return Target(env, f"${ENV_ROUTER}")
    if configured:
        return Target(configured, f"[client] router in {config}")
    return Target(default_router_url(), "the default (no --router, $ZS_ROUTER or config)")


@contextmanager
def reaching(t: Target) -> Iterator[None]:
    """Errors about reaching the router say which URL was tried, where it came from, and
    what to do."""
    from zmqswarm.errors import (
        AccessDeniedError,
        ConfigError,
        NameTakenError,
        RouterUnavailableError,
    )

    try:
        yield
    except (NameTakenError, AccessDeniedError):
        raise  # the router answered: it is there
    except RouterUnavailableError as exc:
        raise RouterUnavailableError(
            f"{exc} (URL from {t.source}): is `zs router` running there? Start one, or give"
            " its URL with --router or $ZS_ROUTER",
            url=t.url,
        ) from None
    except ConfigError as exc:
        raise ConfigError(
            f"{exc} (URL from {t.source}): a router URL looks like ipc:///path/to/socket"
            " or tcp://host:port"
        ) from None


def check_name(what: str, name: str) -> None:
    """A name the router would refuse is a bad argument: say which names it takes."""
    from zmqswarm.protocol.codec import MAX_NAME, valid_name

    if not valid_name(name):
        raise fail(
            USAGE,
            f"invalid {what} name {name!r}: a name is 1 to {MAX_NAME} characters, a letter or"
            " digit, then letters, digits and . _ : @ / + -",
        )


def payload_fields(payload: bytes) -> dict[str, str]:
    """A payload for a JSON line: as text if it is UTF-8, else base64."""
    try:
        return {"payload": payload.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"payload": base64.b64encode(payload).decode(), "encoding": "base64"}
