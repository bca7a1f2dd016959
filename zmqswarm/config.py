"""Typed configuration: frozen msgspec Structs loaded from TOML. Unknown keys fail loudly.

A config file has optional ``[router]`` and ``[client]`` tables; configs/ holds examples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import msgspec

from zmqswarm.errors import ConfigError
from zmqswarm.protocol.options import ClientOptions, RouterOptions

__all__ = ["ClientConfig", "Config", "RouterConfig", "load_config"]


OptionsT = TypeVar("OptionsT")


class _Base(msgspec.Struct, forbid_unknown_fields=True, rename="kebab", frozen=True):
    """forbid_unknown_fields: a typo is an error, not a silently ignored key.
    rename="kebab": TOML keys are written ``max-payload``."""

    def _to(self, cls: type[OptionsT]) -> OptionsT:
        """The options object ``cls`` (a Struct) from the fields it shares with us."""
        mine = msgspec.structs.asdict(self)
        names = {f.name for f in msgspec.structs.fields(cls)}  # type: ignore[arg-type]
        shared: dict[str, Any] = {k: v for k, v in mine.items() if k in names}
        return cls(**shared)


class RouterConfig(_Base, frozen=True):
    bind: list[str] = []
    heartbeat: float = 0.2
    heartbeat_timeout: float = 0.8
    max_payload: int = 1 << 20
    mailbox_max_messages: int = 100_000
    mailbox_max_bytes: int = 64 << 20
    max_bytes: int = 1 << 30
    max_mailboxes: int = 100_000  # one a name: a sender to ever new names fills them
    resident_bytes: int = 64 << 20
    max_attempts: int = 10
    dead_max: int = 10_000
    drain_timeout: float = 2.0
    cpus: list[int] = []  # pin the router to these CPUs (zs router --cpu); [] = anywhere
    # PUB endpoints for observers (zs monitor): None = one beside each bind; [] = none.
    publish: list[str] | None = None
    # The journal: receipts mean on disk, and a restart keeps what was receipted.
    journal: bool = True
    data_dir: str | None = None  # None: $XDG_STATE_HOME/zmqswarm/router/<endpoint>
    # CURVE: the router's secret key file and a directory of the public keys let in. Each
    # key may use its own name and KEY.*, or the names (fnmatch patterns) given here.
    curve_secret: str | None = None
    allow: str | None = None
    names: dict[str, list[str]] = {}
    insecure: bool = False  # bind a non-loopback address without CURVE
    # Prometheus metrics over HTTP on HOST:PORT (zs router --metrics); None: not served.
    metrics: str | None = None
    # Topics: observers get what changed once a tick; values and topics have limits.
    topic_interval: float = 0.05
    max_topic_value: int = 64 << 10
    max_topics: int = 10_000
    max_topic_bytes: int = 64 << 20

    def options(self) -> RouterOptions:
        return self._to(RouterOptions)


class ClientConfig(_Base, frozen=True):
    router: str | None = None
    recv_window: int = 8192
    max_outbox: int = 100_000
    heartbeat: float = 0.2
    heartbeat_timeout: float = 0.8
    resend_after: float = 5.0
    curve_secret: str | None = None  # our secret key file, for a router that wants keys
    router_key: str | None = None  # the router's public key file

    def options(self) -> ClientOptions:
        return self._to(ClientOptions)


class Config(_Base, frozen=True):
    router: RouterConfig = RouterConfig()
    client: ClientConfig = ClientConfig()


def load_config(path: str | Path | None) -> Config:
    """Load and validate a TOML config; ``None`` gives the defaults."""
    if path is None:
        return Config()
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        return msgspec.toml.decode(data, type=Config)
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
