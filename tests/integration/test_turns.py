"""How much the router takes in one turn, seen from a raw socket speaking the protocol."""

from __future__ import annotations

import pytest
import zmq

from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    Code,
    Deliver,
    Hello,
    Nack,
    Receipt,
    Send,
    SendItem,
    Welcome,
    decode,
    encode,
)

from ..helpers import Procs


@pytest.mark.parametrize("packed", [False, True])
def test_each_full_send_frame_is_receipted_in_its_own_turn(procs: Procs, packed: bool) -> None:
    """A turn stops after about 1024 messages, packed in two parts or a part each: a burst of
    full Send frames is receipted frame by frame, so the sender refills its window while the
    router works, instead of waiting for one receipt at the end of its whole window."""
    procs.router()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(procs.url)
    try:
        sock.send_multipart([encode(Hello(PROTOCOL_VERSION, "pusher", 1, 10, False, 1))])
        assert sock.poll(5000)
        sock.recv_multipart()  # Welcome
        frames, per_frame = 8, 1024
        for f in range(frames):
            seqs = range(f * per_frame + 1, (f + 1) * per_frame + 1)
            items = [SendItem(s, "sink") for s in seqs]  # none receipted yet
            if packed:
                sock.send_multipart([encode(Send(1, items, [1] * len(items))), b"x" * len(items)])
            else:
                sock.send_multipart([encode(Send(1, items)), *(b"x" for _ in seqs)])
        receipts: list[int] = []
        while not receipts or receipts[-1] < frames * per_frame:
            assert sock.poll(5000), f"receipts stopped at {receipts}"
            frame = decode(sock.recv_multipart()[0])
            assert isinstance(frame, Receipt)
            receipts.append(frame.upto)
        assert receipts == [(f + 1) * per_frame for f in range(frames)]
    finally:
        sock.close()
        ctx.term()


def test_packed_and_unpacked_peers_share_a_router(procs: Procs) -> None:
    """Raw sockets speaking the protocol to a real router: a packed Send's payloads reach a
    recipient whose Hello said ``packed`` in one part, and one whose Hello did not (an
    older client) a part each, in order; a packed Send cut wrong is refused as BAD_FRAME."""
    procs.router()
    ctx = zmq.Context()
    socks = {}
    try:
        for name, packs in (("pusher", True), ("new", True), ("old", False)):
            sock = socks[name] = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(procs.url)
            hello = Hello(PROTOCOL_VERSION, name, 1, 10, False, 1, packed=packs)
            sock.send_multipart([encode(hello)])
            assert sock.poll(5000)
            welcome = decode(sock.recv_multipart()[0])
            assert isinstance(welcome, Welcome) and welcome.packed
        items = [SendItem(1, "new"), SendItem(2, "old"), SendItem(3, "new", prev=1)]
        socks["pusher"].send_multipart([encode(Send(1, items, [1, 2, 3])), b"abbccc"])
        got = {}
        for name in ("new", "old"):
            assert socks[name].poll(5000)
            parts = socks[name].recv_multipart()
            got[name] = (decode(parts[0]), parts[1:])
        new, old = got["new"], got["old"]
        assert isinstance(new[0], Deliver) and new[0].sizes == [1, 3] and new[1] == [b"accc"]
        assert isinstance(old[0], Deliver) and old[0].sizes == [] and old[1] == [b"bb"]
        bad = [SendItem(4, "old")]
        socks["pusher"].send_multipart([encode(Send(1, bad, [5])), b"abbccc"])
        answers: list[object] = []
        while not any(isinstance(a, Nack) for a in answers):
            assert socks["pusher"].poll(5000), f"no Nack; got {answers}"
            answers.append(decode(socks["pusher"].recv_multipart()[0]))
        nack = answers[-1]
        assert isinstance(nack, Nack) and nack.code == Code.BAD_FRAME
    finally:
        for sock in socks.values():
            sock.close()
        ctx.term()
