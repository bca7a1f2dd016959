"""`zs sub`: print topic values as they change (all of them first, as the router holds
them), one line or one JSON object each."""

from __future__ import annotations

import json
import re
import sys
from typing import TYPE_CHECKING

from .common import (
    CONFIG,
    ROUTER,
    SECURITY,
    as_json,
    keys,
    payload_fields,
    reaching,
    target,
    timeout,
)
from .exits import USAGE, exit_codes, fail
from .params import argument, option

if TYPE_CHECKING:
    from zmqswarm.protocol import TopicView

PARAMS = (
    argument(
        "prefix",
        "Only topics whose name starts with this (default: all).",
        metavar="PREFIX",
        required=False,
    ),  # fmt: skip
    ROUTER,
    as_json(
        "One JSON object per value: topic, seq, publisher, payload (text, or base64 with"
        ' "encoding": "base64"); a topic whose ttl ran out: topic and "gone": true.'
    ),
    option("once", "--once", type=bool, default=False, help="Print the values now and exit."),
    timeout(5.0, "Seconds to wait for the router."),
    *SECURITY,
    CONFIG,
)

_ONE_LINE = str.maketrans({"\n": "\\n", "\r": "\\r"})  # a value is one line of output
# Any start of a topic name: the name rule's characters, up to its length.
_PREFIX = re.compile(r"([A-Za-z0-9][A-Za-z0-9._:@/+\-]{0,255})?\Z")


def run(
    *, prefix: str | None, router: str | None, as_json: bool, once: bool, timeout: float,
    curve_secret: str | None, router_key: str | None, config: str | None,
) -> None:  # fmt: skip
    """Print topic values as they change (Ctrl-C to stop), starting with every value now.

    A value changed many times between two ticks of the router shows once, as it is now."""
    from zmqswarm.config import load_config
    from zmqswarm.observe.observer import Observer

    prefix = prefix or ""
    if not _PREFIX.match(prefix):
        raise fail(USAGE, f"invalid topic prefix {prefix!r}: topics start with a letter or digit")
    with exit_codes():
        cfg = load_config(config)
        where = target(router, config, cfg.client.router)
        curve = keys(curve_secret, router_key, cfg.client)
        observer = Observer(where.url, state=False, topics=prefix, timeout=timeout, curve=curve)
        with reaching(where):
            if once:
                observer.snapshot()
                show(observer.topics, sorted(observer.topics.take_changes()), as_json)
                return
            updates = observer.watch(tick=0.5)
            next(updates)  # the first snapshot: its errors reach the caller
        try:
            show(observer.topics, sorted(observer.topics.take_changes()), as_json)
            for _ in updates:
                changes = observer.topics.take_changes()
                if changes:
                    show(observer.topics, changes, as_json)
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:  # `zs sub | head`
            sys.stderr.close()
        finally:
            updates.close()


def show(view: TopicView, topics: list[str], as_json: bool) -> None:
    out = sys.stdout
    for topic in topics:
        record = view.values.get(topic)
        if as_json:
            line: dict[str, object] = {"topic": topic, "gone": True}
            if record is not None:
                line = {"topic": topic, "seq": record.seq, "publisher": record.publisher}
                line |= payload_fields(record.payload)
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
        elif record is None:
            out.write(f"{topic} (gone)\n")
        else:
            text = record.payload.decode("utf-8", "backslashreplace")
            out.write(f"{topic} {text.translate(_ONE_LINE)}\n")
    out.flush()
