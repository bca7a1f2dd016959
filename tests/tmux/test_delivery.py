"""Deliveries into a real program in a real pane: whole, bracketed, submitted once, in order."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from zmqswarm.agent.gateway import ControlClient
from zmqswarm.agent.paste import paste_and_submit, sanitize

RECORDER = Path(__file__).with_name("recorder.py")

MESSAGES = [
    "one line",
    "two\nlines",
    "quotes 'single' \"double\" and $HOME and #{pane_id} and ; and \\;",
    "tabs\there\tand CRLF\r\nand CR\rend",
    "utf-8: żółw 🐢 — and an embedded end-of-paste \x1b[201~ that must not break out",
    "bell \x07 and NUL-free control \x01\x02 characters",
    "x" * 3000,
]


def test_sanitize() -> None:
    assert sanitize("a\r\nb\rc\x1b[201~d\te\x00") == "a\nb\nc[201~d\te"


def read_records(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)  # poll interval of a deadline wait


def test_messages_arrive_whole_and_submitted_once_in_order(
    tmux_socket: str, tmp_path: Path
) -> None:
    out = tmp_path / "received.jsonl"
    messages = MESSAGES * 4  # 28 deliveries

    async def main() -> None:
        tmux = ControlClient(tmux_socket)
        await tmux.run_subprocess("new-session", "-d", "-s", "home")  # it never starts one
        try:
            lines = await tmux.command(
                "new-window",
                "-P",
                "-F",
                "#{pane_id}",
                "-t",
                "_zmqswarm:",  # the anchor session (its window has the same name)
                f"{sys.executable} {RECORDER} {out}",
            )
            pane = lines[0]
            deadline = time.monotonic() + 10
            while True:  # the program has started once its prompt shows
                shown = await tmux.command("capture-pane", "-p", "-t", pane)
                if any("READY>" in line for line in shown):
                    break
                assert time.monotonic() < deadline, "recorder never started"
                await asyncio.sleep(0.01)
            for text in messages:
                await paste_and_submit(tmux, pane, text)
        finally:
            await tmux.close()

    asyncio.run(main())
    wait_until(lambda: len(read_records(out)) >= len(messages), 10)
    records = read_records(out)
    assert [r["paste"] for r in records] == [sanitize(m) for m in messages]
    assert all(r["typed"] == "" for r in records)  # nothing leaked outside the paste
