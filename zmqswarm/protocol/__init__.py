"""The sans-IO heart of zmqswarm: frames, codec, and the reliability and routing cores.

Nothing in this package imports zmq, asyncio, threading, socket, subprocess or time: every
function takes bytes and a ``now`` and returns bytes and decisions. The drivers in the parent
package (router, client, aio) move the bytes; tests drive these cores with no socket at all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client_core import ClientCore
    from .codec import (
        MAX_BATCH,
        MAX_HEADER,
        AnyFrame,
        DecodeFailure,
        decode,
        encode,
        valid_name,
    )
    from .dead_letters import DeadLetter
    from .frames import (
        PROTOCOL_VERSION,
        Ack,
        Bye,
        Code,
        Deliver,
        Delivered,
        DeliverItem,
        Frame,
        Heartbeat,
        Held,
        Hello,
        Hold,
        Nack,
        PeerState,
        Publish,
        PublishItem,
        Receipt,
        Send,
        SendItem,
        Status,
        Welcome,
    )
    from .inbox import Inbound, Inbox, MessageKey
    from .options import ClientOptions, RouterOptions
    from .query_frames import (
        DeadItem,
        DeadList,
        ListDead,
        ListPeers,
        Observe,
        ObserveTopics,
        PeerItem,
        PeerList,
        Snapshot,
        TopicItem,
        TopicSnapshot,
        TopicTick,
        TopicValue,
        Update,
    )
    from .router_core import RouterCore
    from .send_window import Failed, SendWindow
    from .state_feed import LatencyWindow, StatePublisher, WatchedState
    from .topic_feed import TopicCache, TopicRecord, TopicView


# Names resolve on first use (PEP 562): a client never loads the router's core.
_WHERE = {
    **dict.fromkeys(["ClientCore"], "client_core"),
    **dict.fromkeys(["ClientOptions", "RouterOptions"], "options"),
    **dict.fromkeys(
        ["MAX_BATCH", "MAX_HEADER", "AnyFrame", "DecodeFailure", "decode", "encode", "valid_name"],
        "codec",
    ),
    **dict.fromkeys(["Inbound", "Inbox", "MessageKey"], "inbox"),
    **dict.fromkeys(["DeadLetter"], "dead_letters"),
    **dict.fromkeys(["RouterCore"], "router_core"),
    **dict.fromkeys(["Failed", "SendWindow"], "send_window"),
    **dict.fromkeys(["LatencyWindow", "StatePublisher", "WatchedState"], "state_feed"),
    **dict.fromkeys(["TopicCache", "TopicRecord", "TopicView"], "topic_feed"),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:  # a frame: the two frames modules say which are theirs
        queries = importlib.import_module(f"{__name__}.query_frames")
        module = "query_frames" if name in queries.__all__ else "frames"
    try:
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value


__all__ = [
    "MAX_BATCH",
    "MAX_HEADER",
    "PROTOCOL_VERSION",
    "Ack",
    "AnyFrame",
    "Bye",
    "ClientCore",
    "ClientOptions",
    "Code",
    "DeadItem",
    "DeadLetter",
    "DeadList",
    "DecodeFailure",
    "Deliver",
    "DeliverItem",
    "Delivered",
    "Failed",
    "Frame",
    "Heartbeat",
    "Held",
    "Hello",
    "Hold",
    "Inbound",
    "Inbox",
    "LatencyWindow",
    "ListDead",
    "ListPeers",
    "MessageKey",
    "Nack",
    "Observe",
    "ObserveTopics",
    "PeerItem",
    "PeerList",
    "PeerState",
    "Publish",
    "PublishItem",
    "Receipt",
    "RouterCore",
    "RouterOptions",
    "Send",
    "SendItem",
    "SendWindow",
    "Snapshot",
    "StatePublisher",
    "Status",
    "TopicCache",
    "TopicItem",
    "TopicRecord",
    "TopicSnapshot",
    "TopicTick",
    "TopicValue",
    "TopicView",
    "Update",
    "WatchedState",
    "Welcome",
    "decode",
    "encode",
    "valid_name",
]
