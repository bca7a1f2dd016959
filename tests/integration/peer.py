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
take NAME URL OUT [options]             a recipient for fault tests: appends "sender payload
                                        attempt handed_ns" to OUT as each message is handed
                                        over (time.monotonic_ns() as recv() returns), then
                                        acks it; --delay MS: a slow application (sleeps after
                                        each); --stop-after N: SIGSTOPs itself after the Nth
                                        (prints STOPPING N first); --leave-after N: closes
                                        after the Nth; --last PAYLOAD: done once that one is
                                        handed; --until FILE: done once FILE exists;
                                        --state FILE: the recipient's state; --auto: auto_ack;
                                        --ack-delay S: hold acks back S seconds; --kill-after
                                        N: SIGKILLs itself after the Nth; --die-after N: is
                                        SIGKILLed at a random moment within 5 ms of handing
                                        the Nth (wherever it is then); --by-ticket: writes
                                        "sender:SEQ" (the ticket's seq) for the payload;
                                        --window N: at most N deliveries unacked (a slow
                                        recipient's backlog waits at the router). Prints
                                        DONE n, LEFT n, NAME_TAKEN n or IDLE n (n: handed)
spool NAME URL SPOOL TO COUNT LOG RATE [DIE_AFTER]
                                        sends through a spool until a ticket's seq reaches
                                        COUNT, at most RATE a second (0: flat out), appending
                                        each ticket's seq to LOG once send() has returned;
                                        prints RESUMED n (tickets the spool carried over)
                                        first, DONE at the end; DIE_AFTER N: as --die-after
feed NAME URL COUNT TO1,TO2,... HISTORY [options]
                                        a sender for fault tests: sends COUNT messages
                                        round-robin, each payload NAME:i:INCARNATION (the
                                        client's epoch in hex), and appends its history to
                                        HISTORY as tests/checker.py reads it: a "send" line
                                        before each send, then "ok", "fail" or (given up
                                        waiting) "info" as it learns the outcome, each line
                                        flushed whole; --rate R: at most R a second;
                                        --settle S: wait up to S s for the last receipts.
                                        Prints DONE, or UNSENT n (n: never receipted)
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import TextIO

from zmqswarm import (
    Client,
    ClientOptions,
    DeliveryError,
    Message,
    NameTakenError,
    Ticket,
    ZsTimeoutError,
)


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


def take(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="peer.py take")
    ap.add_argument("name")
    ap.add_argument("url")
    ap.add_argument("out")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--stop-after", type=int, default=0)
    ap.add_argument("--leave-after", type=int, default=0)
    ap.add_argument("--last", default="")
    ap.add_argument("--until", type=Path)
    ap.add_argument("--idle", type=float, default=30.0)
    ap.add_argument("--state")
    ap.add_argument("--auto", action="store_true")
    ap.add_argument("--ack-delay", type=float, default=ClientOptions().ack_delay)
    ap.add_argument("--kill-after", type=int, default=0)
    ap.add_argument("--die-after", type=int, default=0)
    ap.add_argument("--by-ticket", action="store_true")
    ap.add_argument("--window", type=int, default=0)
    ap.add_argument("--many", type=int, default=0, help="take with recv_many(N)")
    a = ap.parse_args(argv)
    handed = 0
    seen_last = False
    quiet_since = time.monotonic()
    default = ClientOptions()
    options = ClientOptions(ack_delay=a.ack_delay, recv_window=a.window or default.recv_window)
    client = Client(a.name, router=a.url, auto_ack=a.auto, state=a.state, options=options)
    waiting: list[Message] = []
    with client, open(a.out, "a") as f:
        while not (a.until.exists() if a.until else seen_last):
            try:
                if not waiting:
                    got = client.recv_many(a.many, 0.1) if a.many else [client.recv(0.1)]
                    waiting.extend(reversed(got))
                msg = waiting.pop()
            except ZsTimeoutError:
                if time.monotonic() - quiet_since > a.idle:
                    say(f"IDLE {handed}")
                    return
                continue
            except NameTakenError:
                say(f"NAME_TAKEN {handed}")
                return
            at = time.monotonic_ns()  # handed over: recv() has returned it
            text = f"{msg.sender}:{msg.ticket.seq}" if a.by_ticket else msg.text
            f.write(f"{msg.sender} {text} {msg.attempt} {at}\n")
            f.flush()
            msg.ack()
            handed += 1
            if handed == a.kill_after:
                os.kill(os.getpid(), signal.SIGKILL)  # what it acked never left as an Ack
            if handed == a.die_after:
                die_soon()
            quiet_since = time.monotonic()
            seen_last = seen_last or msg.text == a.last
            if handed == a.stop_after:
                # Frozen here, between two hand-overs with a backlog taken: every line
                # written from now on was handed over after the stop.
                say(f"STOPPING {handed}")
                os.kill(os.getpid(), signal.SIGSTOP)
            if handed == a.leave_after:
                say(f"LEFT {handed}")
                return
            if a.delay:
                time.sleep(a.delay / 1000)  # the application's own work, not a sync
    say(f"DONE {handed}")


def spool(argv: list[str]) -> None:
    name, url, path, to, count, log, rate = argv[:7]
    die_after = int(argv[7]) if argv[7:] else 0
    with Client(name, router=url, spool=path) as client, open(log, "a") as f:
        say(f"RESUMED {len(client.resumed)}")
        start, seq, sent = time.monotonic(), 0, 0
        while seq < int(count):
            seq = client.send(to, f"{name}:{sent}".encode()).seq
            f.write(f"{seq}\n")
            f.flush()  # logged only once send() has returned: a promise
            sent += 1
            if sent == die_after:
                die_soon()
            if float(rate) and sent % 10 == 0:  # pacing: still sending when a fault hits
                time.sleep(max(0.0, start + sent / float(rate) - time.monotonic()))
        unsent = client.close(timeout=60)
    say("DONE" if not unsent else f"UNSENT {len(unsent)}")


def die_soon() -> None:
    """SIGKILL this process within 5 ms, from another thread: wherever the main thread is
    then (inside send() or recv(), writing its log, acking), as a kill from outside would
    find it, but never after the work is done, as a test's kill could when starved."""

    def kill() -> None:
        time.sleep(random.uniform(0, 0.005))  # the fault's moment, not a synchronisation
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=kill, daemon=True).start()


def feed(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="peer.py feed")
    ap.add_argument("name")
    ap.add_argument("url")
    ap.add_argument("count", type=int)
    ap.add_argument("to")
    ap.add_argument("history")
    ap.add_argument("--rate", type=float, default=0.0)
    ap.add_argument("--settle", type=float, default=60.0)
    a = ap.parse_args(argv)
    recipients = a.to.split(",")
    client = Client(a.name, router=a.url)
    incarnation = f"{client.epoch:x}"
    pending: deque[tuple[int, Ticket]] = deque()  # sent, outcome not yet written, in order
    with open(a.history, "a") as history:
        note(history, f"start {a.name} {incarnation} {time.monotonic_ns()}")
        start = time.monotonic()
        for i in range(a.count):
            to = recipients[i % len(recipients)]
            note(history, f"send {i} {to} {time.monotonic_ns()}")  # before: a kill loses no send
            pending.append((i, client.send(to, f"{a.name}:{i}:{incarnation}".encode())))
            outcomes(history, pending)
            due = start + (i + 1) / a.rate if a.rate else 0.0
            while (left := due - time.monotonic()) > 0:  # pacing, taking receipts meanwhile
                client.poll(left)
                outcomes(history, pending)
        deadline = time.monotonic() + a.settle
        while pending and (left := deadline - time.monotonic()) > 0:
            client.poll(min(left, 0.05))
            outcomes(history, pending)
        outcomes(history, pending, every=True)
        for i, _ in pending:
            note(history, f"info {i} {time.monotonic_ns()}")
        client.close(timeout=0)
    say(f"UNSENT {len(pending)}" if pending else "DONE")


def outcomes(history: TextIO, pending: deque[tuple[int, Ticket]], every: bool = False) -> None:
    """Write the outcomes learnt of the oldest sends (receipts come in send order, so the
    first still pending ends the look), or with ``every`` of all."""
    for _ in range(len(pending)):
        i, ticket = pending.popleft()
        state = ticket.state
        if state == "pending":
            pending.append((i, ticket))
            if every:
                continue
            pending.rotate(1)  # back at the front, where it was
            return
        if state == "failed":
            try:
                ticket.wait(timeout=0)
            except DeliveryError as exc:
                note(history, f"fail {i} {time.monotonic_ns()} {exc.code}: {exc.reason}")
        else:
            note(history, f"ok {i} {time.monotonic_ns()}")


def note(f: TextIO, line: str) -> None:
    f.write(f"{line}\n")
    f.flush()  # one write() a line: a SIGKILL leaves at most the line in progress torn


def say(line: str) -> None:
    print(line, flush=True)  # noqa: T201 - the test reads this line


if __name__ == "__main__":
    if sys.argv[1] in ("take", "feed", "spool"):
        {"take": take, "feed": feed, "spool": spool}[sys.argv[1]](sys.argv[2:])
        sys.exit()
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
