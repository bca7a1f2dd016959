"""The identities a peer presents: its epoch and its routing id."""

from __future__ import annotations

from zmqswarm.protocol.codec import MAX_EPOCH
from zmqswarm.transport import new_epoch, routing_id


def test_epochs_are_random_and_within_53_bits() -> None:
    epochs = [new_epoch() for _ in range(10_000)]
    assert MAX_EPOCH == 2**53 - 1
    assert all(1 <= e <= MAX_EPOCH for e in epochs)
    assert len(set(epochs)) == len(epochs)
    assert max(epochs).bit_length() == 53  # the whole range is used, not a narrower one


def test_routing_id_is_name_slash_lowercase_unpadded_hex() -> None:
    assert routing_id("alice", 0xABC) == b"alice/abc"
    assert routing_id("bob@host", 1) == b"bob@host/1"
    assert routing_id("a", MAX_EPOCH) == b"a/1fffffffffffff"
