"""The clients: ``Client`` (blocking, driven on the caller's thread) and ``AsyncClient``
(asyncio), two thin drivers over one shared layer (``base``) and one sans-IO core.

Names resolve on first use (PEP 562): ``zs send`` never pays for asyncio."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .aio import AsyncClient, AsyncTicket
    from .sync import Client, Ticket
    from .tickets import Message, TicketId

_WHERE = {
    "AsyncClient": "aio",
    "AsyncTicket": "aio",
    "Client": "sync",
    "Ticket": "sync",
    "Message": "tickets",
    "TicketId": "tickets",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = ["AsyncClient", "AsyncTicket", "Client", "Message", "Ticket", "TicketId"]
