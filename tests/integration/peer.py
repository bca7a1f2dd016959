"""A test peer run as its own process: `python peer.py send|recv ...`.

send NAME URL COUNT TO1,TO2,... [RATE]   sends COUNT messages round-robin (at most RATE a
                                         second if given), waits for every receipt
recv NAME URL COUNT OUT           appends "sender payload attempt" lines to OUT as they arrive
"""

from __future__ import annotations

import sys
import time

from zmqswarm import Client, ZsTimeoutError


def send(name: str, url: str, count: int, recipients: list[str], rate: float = 0) -> None:
    start = time.monotonic()
    with Client(name, router=url) as client:
        for i in range(count):
            client.send(recipients[i % len(recipients)], f"{name}:{i}".encode())
            if rate and i % 100 == 99:  # pacing: the sender is still sending when a fault hits
                time.sleep(max(0.0, start + (i + 1) / rate - time.monotonic()))
        unsent = client.close(timeout=60)
    print(  # noqa: T201 - the test reads this line
        "DONE" if not unsent else f"UNSENT {len(unsent)}", flush=True
    )


def recv(name: str, url: str, count: int, out: str) -> None:
    with Client(name, router=url, auto_ack=False) as client, open(out, "a") as f:
        got = 0
        while got < count:
            try:
                msg = client.recv(timeout=30)
            except ZsTimeoutError:
                break
            f.write(f"{msg.sender} {msg.text} {msg.attempt}\n")
            f.flush()  # handed over = written; then acked
            msg.ack()
            got += 1
    print(  # noqa: T201 - the test reads this line
        "DONE", flush=True
    )


if __name__ == "__main__":
    mode, name, url, count, extra = sys.argv[1:6]
    if mode == "send":
        send(name, url, int(count), extra.split(","), float(sys.argv[6]) if sys.argv[6:] else 0)
    else:
        recv(name, url, int(count), extra)
