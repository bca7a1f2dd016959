"""zmqswarm: ZeroMQ messaging for swarms of AI coding agents.

from zmqswarm import Client
with Client("alice") as alice:
    alice.send("bob", b"hello").wait("accepted")
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# errors has no dependencies: import it now. Everything else resolves on first use.
from zmqswarm.errors import (
    BackpressureError,
    ClientClosedError,
    ConfigError,
    DeliveryError,
    JournalError,
    LocalProtocolError,
    NameTakenError,
    ProtocolError,
    RemoteProtocolError,
    RouterInUseError,
    RouterUnavailableError,
    StoreError,
    StoreInUseError,
    WrongThreadError,
    ZmqswarmError,
    ZsTimeoutError,
)

if TYPE_CHECKING:
    from zmqswarm.client import AsyncClient, AsyncTicket, Client, Message, Ticket, TicketId
    from zmqswarm.config import ClientConfig, Config, RouterConfig, load_config
    from zmqswarm.observe import AsyncObserver, Observer
    from zmqswarm.protocol import ClientOptions, RouterOptions
    from zmqswarm.router import Router

__version__ = "0.1.0"

# Names resolve on first use (PEP 562), so `zs send` never pays for asyncio or the router.
_WHERE = {
    "AsyncClient": "client.aio",
    "AsyncTicket": "client.aio",
    "Client": "client.sync",
    "Ticket": "client.sync",
    "ClientConfig": "config",
    "Config": "config",
    "RouterConfig": "config",
    "load_config": "config",
    "Observer": "observe.observer",
    "AsyncObserver": "observe.aio",
    "ClientOptions": "protocol",
    "RouterOptions": "protocol",
    "Router": "router.loop",
    "Message": "client.tickets",
    "TicketId": "client.tickets",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'zmqswarm' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"zmqswarm.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "AsyncClient",
    "AsyncObserver",
    "AsyncTicket",
    "BackpressureError",
    "Client",
    "ClientClosedError",
    "ClientConfig",
    "ClientOptions",
    "Config",
    "ConfigError",
    "DeliveryError",
    "JournalError",
    "LocalProtocolError",
    "Message",
    "NameTakenError",
    "Observer",
    "ProtocolError",
    "RemoteProtocolError",
    "Router",
    "RouterConfig",
    "RouterInUseError",
    "RouterOptions",
    "RouterUnavailableError",
    "StoreError",
    "StoreInUseError",
    "Ticket",
    "TicketId",
    "WrongThreadError",
    "ZmqswarmError",
    "ZsTimeoutError",
    "__version__",
    "load_config",
]
