"""`python -m bench.router_core`: the router's decisions alone, in-process, no sockets.

One sender's full Send frames (1024 messages each) are accepted into a recipient's mailbox,
delivered and acked, through RouterCore.handle and take_output, with the clock passed in.
The baseline, measured in the same run, is the codec work that path cannot avoid: decoding
the same Send headers and Acks and encoding the Deliver headers, msgspec alone. What lies
between the two is the router's own Python per message.
"""

from __future__ import annotations

import argparse
import time

from bench._procs import median, write_json
from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Deliver,
    DeliverItem,
    Hello,
    RouterCore,
    RouterOptions,
    Send,
    SendItem,
    decode,
    encode,
)

PER_FRAME = 1024


def _frames(n_frames: int, size: int) -> list[list[bytes]]:
    payload = b"x" * size
    frames = []
    for f in range(n_frames):
        seqs = range(f * PER_FRAME + 1, (f + 1) * PER_FRAME + 1)
        header = encode(Send(1, [SendItem(s, "bob") for s in seqs]))
        frames.append([header, *([payload] * PER_FRAME)])
    return frames


def core_pass(frames: list[list[bytes]]) -> float:
    """ns a message: accept, deliver and ack every message of ``frames``."""
    limits = RouterOptions(mailbox_max_messages=10**9, mailbox_max_bytes=1 << 40, max_bytes=1 << 40)
    core = RouterCore(epoch=1, options=limits)
    core.handle(b"A", [encode(Hello(PROTOCOL_VERSION, "alice", 1, 10, False, 1))], 0.0)
    core.handle(b"B", [encode(Hello(PROTOCOL_VERSION, "bob", 1, 8192, False, 1))], 0.0)
    core.take_output(0.0)
    bob_session = core.registry.by_name["bob"].sid
    start = time.perf_counter()
    for i, frame in enumerate(frames, 1):
        core.handle(b"A", frame, 1.0)
        core.take_output(1.0)
        core.handle(b"B", [encode(Ack(bob_session, i * PER_FRAME))], 1.0)
    core.take_output(1.0)
    elapsed = time.perf_counter() - start
    n = len(frames) * PER_FRAME
    assert core.stats["acked"] == n, core.stats  # the work was done, not refused
    return elapsed / n * 1e9


def codec_pass(frames: list[list[bytes]]) -> float:
    """ns a message: the same headers decoded and encoded, nothing decided."""
    start = time.perf_counter()
    for i, frame in enumerate(frames, 1):
        send = decode(frame[0])
        assert isinstance(send, Send)
        items = [DeliverItem(it.seq, "alice", 1, it.seq, 1) for it in send.items]
        encode(Deliver(2, items))
        decode(encode(Ack(2, i * PER_FRAME)))
    return (time.perf_counter() - start) / (len(frames) * PER_FRAME) * 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=100, help="Send frames of 1024 per pass")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", default="bench/results/router_core.json")
    args = ap.parse_args()
    frames = _frames(args.frames, 64)
    codec, core = [], []
    for _ in range(args.runs):  # interleaved: both see the same noise
        codec.append(codec_pass(frames))
        core.append(core_pass(frames))
    c, r = median(codec), median(core)
    print(f"{'path':<34} {'ns/msg (median)':>16}  runs")
    print(f"{'codec alone (baseline)':<34} {c:16.0f}  " + " / ".join(f"{x:.0f}" for x in codec))
    print(
        f"{'RouterCore accept+deliver+ack':<34} {r:16.0f}  " + " / ".join(f"{x:.0f}" for x in core)
    )
    print(f"ratio {r / c:.2f}x")
    write_json(args.json, {"codec_ns": codec, "core_ns": core, "ratio": r / c})


if __name__ == "__main__":
    main()
