"""Tuning of a peer (``ClientOptions``) and of a router (``RouterOptions``): frozen Structs,
every field with a default. ``zmqswarm.config`` loads them from TOML; clients and routers take
them as keyword arguments."""

from __future__ import annotations

import msgspec

__all__ = ["ClientOptions", "RouterOptions"]


class ClientOptions(msgspec.Struct, frozen=True):
    """Tuning of one peer. The defaults suit a local router; all are keyword-only overrides
    on Client/AsyncClient."""

    # Unreceipted messages held before send() pushes back. All of them are on the wire:
    # send() hands its frame to libzmq at once, which carries it without our help.
    max_outbox: int = 100_000
    recv_window: int = 8192  # unacked deliveries the router may have out to us (credit)
    max_payload: int = 1 << 20
    # Acks are coalesced: the first after a quiet spell goes at once, then at most one per
    # ack_delay (or sooner once a quarter of recv_window waits). They only return credit, so
    # holding them back costs no latency and saves a frame and a router turn per message.
    ack_delay: float = 0.002
    heartbeat: float = 0.2  # ZMTP PING interval, run by libzmq's own I/O thread
    heartbeat_timeout: float = 0.8  # no traffic for this long: the connection is dead
    # Within a live connection no frame is lost, and a dropped one starts a new session that
    # resends what it must at once: the resend timer is only a backstop, for a router that
    # took a frame and never answered.
    resend_after: float = 5.0
    max_resend_after: float = 60.0
    max_attempts: int = 0  # 0: resend until receipted or the ttl runs out
    takeover: bool = False
    send_only: bool = False  # never receive: may share a name with a live receiving peer
    # A spool's or a state's writes are in the kernel when send() or ack() returns (they
    # survive a kill); fsynced (they survive a machine crash) this many seconds later at most
    # while the client is called, and at close. 0: fsync each write (0.2 to 1.5 ms here).
    fsync_every: float = 0.05
    max_topic_value: int = 64 << 10  # publish() refuses a larger value (the router's default)
    # Publishes coalesced: the first after a quiet spell leaves at once, then one frame at
    # most every publish_delay with the latest value of each topic (observers get a tick
    # every 50 ms anyway; a runner publishing 10,000 times a second would otherwise cost the
    # router a frame each). None: the driver's default, 10 ms for AsyncClient (a timer sends
    # what waits) and 0 for Client, which runs only inside its caller's calls and would
    # otherwise hold a burst's last value until the next one.
    publish_delay: float | None = None


class RouterOptions(msgspec.Struct, frozen=True):
    heartbeat: float = 0.2  # ZMTP PING interval, run by libzmq's I/O thread
    # A connection that carries nothing for this long is closed, and its session ends: the
    # peer's process is stopped or dead, or the network is. A busy peer still answers (its
    # libzmq thread does, without the GIL).
    heartbeat_timeout: float = 0.8
    max_payload: int = 1 << 20
    mailbox_max_messages: int = 100_000
    mailbox_max_bytes: int = 64 << 20
    max_bytes: int = 1 << 30  # all messages held, router-wide: payloads + ENTRY_COST each
    max_mailboxes: int = 100_000
    # With a journal: bytes of waiting mail held in memory (payloads, and ENTRY_COST each).
    # Beyond it, mail waits on
    # disk only and is read back a page at a time when its recipient can take it.
    resident_bytes: int = 64 << 20
    max_attempts: int = 10  # deliveries without an ack before a message is dead
    dead_max: int = 10_000  # dead letters kept (oldest dropped, counted)
    stream_ttl: float = 3600.0  # forget an idle sender's dedup watermark after this
    retry_ms: int = 200  # hint sent with MAILBOX_FULL / ROUTER_FULL
    max_inflight_bytes: int = 16 << 20  # per session, besides the peer's count window
    # Receipts are coalesced per sender: the first after a quiet spell goes at once, then at
    # most one per receipt_delay, or sooner once receipt_batch messages wait for one. A busy
    # sender's I/O thread then wakes for a receipt every 2 ms, not for every message.
    receipt_delay: float = 0.002
    receipt_batch: int = 512
    # Observers get an Update at most every publish_interval, only when something changed,
    # and at least every publish_heartbeat so that they can tell quiet from gone.
    publish_interval: float = 0.25
    publish_heartbeat: float = 1.0
    # Topics: what changed goes to observers at most every topic_interval (a burst to one
    # topic is one value per tick), a TopicTick at least every publish_heartbeat.
    topic_interval: float = 0.05
    max_topic_value: int = 64 << 10  # bytes of one topic value
    max_topics: int = 10_000
    max_topic_bytes: int = 64 << 20  # all topic values held
