"""How much the router takes in one turn, seen from a raw socket speaking the protocol."""

from __future__ import annotations

import zmq

from zmqswarm.protocol import PROTOCOL_VERSION, Hello, Receipt, Send, SendItem, decode, encode

from ..helpers import Procs


def test_each_full_send_frame_is_receipted_in_its_own_turn(procs: Procs) -> None:
    """A turn stops after about 1024 parts: a burst of full Send frames is receipted frame by
    frame, so the sender refills its window while the router works, instead of waiting for
    one receipt at the end of its whole window."""
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
            header = encode(Send(1, [SendItem(s, "sink") for s in seqs]))  # none receipted yet
            sock.send_multipart([header, *(b"x" for _ in seqs)])
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
