"""A publishing peer for topic tests, run as its own process: update i sets topic
``t/{i % topics}`` to ``i`` (ASCII), at ``rate`` updates a second (0: flat out). Prints
``progress N`` every ``--every`` updates, then ``done NS``: time.monotonic_ns() just after
the last publish() returned (the frame was on the socket). CLOCK_MONOTONIC is the same clock
in every process of the machine."""

from __future__ import annotations

import argparse
import time

from zmqswarm import Client


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--router", required=True)
    parser.add_argument("--name", default="publisher")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--topics", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--every", type=int, default=0)
    args = parser.parse_args()
    with Client(args.name, router=args.router) as client:
        client.wait_ready(10)
        start = time.monotonic()
        publish, topics, rate = client.publish, args.topics, args.rate
        names = [f"t/{k}" for k in range(topics)]
        i = 0
        while i < args.count:
            due = (
                args.count
                if not rate
                else min(args.count, int((time.monotonic() - start) * rate) + 1)
            )
            if i >= due:
                time.sleep(0.0005)  # ahead of the rate
                continue
            while i < due:
                publish(names[i % topics], b"%d" % i)
                i += 1
                if args.every and i % args.every == 0:
                    print(f"progress {i}", flush=True)  # noqa: T201 (its output)
        print(f"done {time.monotonic_ns()}", flush=True)  # noqa: T201 (its output)


def final_values(count: int, topics: int) -> dict[str, bytes]:
    """What the router holds once ``count`` updates to ``topics`` topics are in."""
    return {f"t/{i % topics}": b"%d" % i for i in range(max(0, count - topics), count)}


if __name__ == "__main__":
    main()
