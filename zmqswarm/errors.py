"""The one exception tree of zmqswarm.

::

    ZmqswarmError
    ├── ConfigError                 a config file or option is wrong (typos fail loudly)
    ├── ProtocolError               a frame broke the wire protocol
    │   ├── LocalProtocolError      ... and it was ours (a bug, or misuse of the core)
    │   └── RemoteProtocolError     ... and it came from the peer
    ├── ClientClosedError           you closed the client; nothing more can be done with it
    ├── WrongThreadError            a Client used off the thread that made it (a RuntimeError)
    ├── RouterUnavailableError      the router could not be reached or refused the session
    │   ├── NameTakenError          another live peer holds the name (use takeover=True)
    │   └── AccessDeniedError       the router refused our key, or this name for our key
    ├── RouterInUseError            a live router already holds the endpoint
    ├── JournalError                the router's journal cannot be opened, or is damaged
    ├── DeliveryError               a ticket ended without reaching the state asked for
    ├── BackpressureError           the outbox is full and the caller chose not to wait
    ├── StoreError                  a spool or state file cannot be used (damaged, another name's)
    │   └── StoreInUseError         another live process holds it
    └── ZsTimeoutError              a wait ran out of time (also a builtin TimeoutError)

Errors carry data (``DeliveryError.code``, ``BackpressureError.limit``...) and a ``retriable``
class attribute that says whether trying the same thing again later can succeed.
"""

from __future__ import annotations

import os
from typing import ClassVar

__all__ = [
    "AccessDeniedError",
    "BackpressureError",
    "ClientClosedError",
    "ConfigError",
    "DeliveryError",
    "JournalError",
    "LocalProtocolError",
    "NameTakenError",
    "ProtocolError",
    "RemoteProtocolError",
    "RouterInUseError",
    "RouterUnavailableError",
    "StoreError",
    "StoreInUseError",
    "ZmqswarmError",
    "WrongThreadError",
    "ZsTimeoutError",
]


class ZmqswarmError(Exception):
    """Root of every error zmqswarm raises on purpose."""

    retriable: ClassVar[bool] = False


class ConfigError(ZmqswarmError, ValueError):
    """A config file, option or argument is invalid."""


class ProtocolError(ZmqswarmError):
    """A frame broke the wire protocol."""


class LocalProtocolError(ProtocolError):
    """We were about to break the protocol: a bug or a misuse of the core."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class ClientClosedError(ZmqswarmError):
    """The client was closed by its owner; nothing more can be sent or received."""


class WrongThreadError(ZmqswarmError, RuntimeError):
    """A ``Client`` was used from a thread other than the one that made it. It drives its
    socket on its owner's thread, inside each call, as a pyzmq socket must be: use one
    ``Client`` per thread, or an ``AsyncClient``."""


class JournalError(ZmqswarmError):
    """The router's journal cannot be opened (held by another router, unreadable) or failed
    its integrity check. The router refuses to start rather than lose what it receipted."""


class RouterUnavailableError(ZmqswarmError):
    """The router did not answer in time, or refused the session."""

    retriable = True

    def __init__(self, message: str, *, url: str = "") -> None:
        super().__init__(message)
        self.url = url


class NameTakenError(RouterUnavailableError):
    """Another live peer already holds this name; pass ``takeover=True`` to take it over."""

    retriable = False


class AccessDeniedError(RouterUnavailableError):
    """The router refused our CURVE key (not in its allow list, or revoked), or refused this
    name to it. Trying again with the same key and name cannot succeed."""

    retriable = False


class RouterInUseError(ZmqswarmError):
    """A live router already holds this endpoint."""

    def __init__(self, endpoint: str, pid: int | None) -> None:
        who = f" (pid {pid})" if pid else ""
        super().__init__(f"a router is already serving {endpoint}{who}")
        self.endpoint = endpoint
        self.pid = pid


class DeliveryError(ZmqswarmError):
    """A ticket ended without reaching the state that was asked for.

    ``code`` is the wire error code (see ``zmqswarm.protocol.Code``) or a status such as
    ``"expired"``; ``reason`` is the human-readable detail.
    """

    def __init__(self, ticket: str, code: str, reason: str) -> None:
        super().__init__(f"ticket {ticket}: {code}: {reason}")
        self.ticket = ticket
        self.code = code
        self.reason = reason


class BackpressureError(ZmqswarmError):
    """The outbox holds ``limit`` messages already; wait, or slow down."""

    retriable = True

    def __init__(self, limit: int) -> None:
        super().__init__(f"outbox full ({limit} unreceipted messages)")
        self.limit = limit


class StoreError(ZmqswarmError):
    """A spool or state file cannot be used: it is damaged, belongs to another name, or
    cannot be written."""


class StoreInUseError(StoreError):
    """Another live process holds this spool or state file: one process per file."""

    retriable = True  # once that process is gone

    def __init__(self, path: str, pid: int | None) -> None:
        who = f"process {pid}" if pid else "another process"
        mine = " (this process: open it once)" if pid == os.getpid() else ""
        super().__init__(f"{path} is held by {who}{mine}: a spool or state serves one process")
        self.path = path
        self.pid = pid


class ZsTimeoutError(ZmqswarmError, TimeoutError):
    """A wait ran out of time. Also a builtin ``TimeoutError``."""

    retriable = True
