"""A test peer run as its own process: `python peer.py MODE NAME URL ...`.

send NAME URL COUNT TO1,TO2,... [RATE]  sends COUNT messages round-robin (at most RATE a
                                        second if given), waits for every receipt
recv NAME URL COUNT OUT                 appends "sender payload attempt" lines to OUT as they
                                        arrive; acks each after writing it
busy NAME URL COUNT TO SECONDS          sends COUNT messages to TO stamped with
                                        time.monotonic_ns(), prints SPIN, computes in pure
                                        Python for SECONDS (the GIL held throughout), then
                                        receives what came meanwhile: prints GOT n a1,a2,...
                                        (the attempt of each) once nothing comes for 2 s
hold NAME URL COUNT                     receives COUNT messages without acking them, prints
                                        HOLDING, then sleeps until killed
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
    say("DONE" if not unsent else f"UNSENT {len(unsent)}")


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
    say("DONE")


def busy(name: str, url: str, count: int, to: str, seconds: float) -> None:
    with Client(name, router=url) as client:
        client.wait_ready(10)
        for _ in range(count):
            client.send(to, str(time.monotonic_ns()).encode())
        say("SPIN")
        end = time.monotonic() + seconds
        while time.monotonic() < end:  # a pure-Python loop: the GIL never released
            pass
        attempts = []
        try:
            while True:
                attempts.append(client.recv(timeout=2.0).attempt)
        except ZsTimeoutError:
            pass
        say(f"GOT {len(attempts)} {','.join(map(str, attempts))}")


def hold(name: str, url: str, count: int) -> None:
    client = Client(name, router=url, auto_ack=False)
    held = [client.recv(timeout=30) for _ in range(count)]
    say(f"HOLDING {len(held)}")
    time.sleep(3600)


def say(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - the test reads this line


if __name__ == "__main__":
    mode, name, url, count = sys.argv[1:5]
    rest = sys.argv[5:]
    if mode == "send":
        send(name, url, int(count), rest[0].split(","), float(rest[1]) if rest[1:] else 0)
    elif mode == "recv":
        recv(name, url, int(count), rest[0])
    elif mode == "busy":
        busy(name, url, int(count), rest[0], float(rest[1]))
    else:
        hold(name, url, int(count))
