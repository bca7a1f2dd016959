"""A test program for a tmux pane: enables bracketed paste, reads raw input, and appends one
JSON line per submission to OUT: {"paste": <text inside the markers>, "typed": <other text>}.
A submission ends at Enter (CR) outside a paste. Run: python recorder.py OUT [BUSY_SECONDS]

With ZS_PLACEHOLDER set, each prompt shows that text dim after it, with the cursor before
it, the way agent TUIs show a placeholder in an empty composer.

With ZS_ECHO set, the last line of each paste is shown after the prompt, as a composer shows
what it holds; with ZS_SWALLOW set, the first Enter after each paste is ignored, as a TUI
that takes an early Enter as part of the paste would.

With ZS_TYPED set, typed keys (outside a paste) are shown at the cursor, and DEL erases the
last one, as a line editor shows a draft. With ZS_KEYS set, it never turns bracketed paste on
and takes LF as Enter too, as a TUI that reads keys does: a pasted newline submits.

With BUSY_SECONDS it first works (prints a line every 50 ms) for that long; anything typed or
pasted meanwhile is recorded as {"during_busy": ...}: a delivery that did not wait."""

from __future__ import annotations

import json
import os
import select
import sys
import termios
import time
import tty

START, END = b"\x1b[200~", b"\x1b[201~"


def busy(fd: int, out: str, seconds: float) -> None:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        os.write(sys.stdout.fileno(), f"working {n}\r\n".encode())
        if select.select([fd], [], [], 0.05)[0]:
            with open(out, "a") as f:
                f.write(json.dumps({"during_busy": os.read(fd, 65536).decode()}) + "\n")


def main(out: str, busy_seconds: float = 0.0) -> None:
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    tty.setraw(fd)
    if busy_seconds:
        busy(fd, out, busy_seconds)
    placeholder = os.environ.get("ZS_PLACEHOLDER", "").encode()
    prompt = b"READY> "
    if placeholder:  # dim text, then the cursor back to where typing starts
        prompt += b"\x1b[2m" + placeholder + b"\x1b[0m" + b"\x1b[%dD" % len(placeholder)
    keys = bool(os.environ.get("ZS_KEYS"))
    os.write(sys.stdout.fileno(), (b"" if keys else b"\x1b[?2004h") + prompt)
    echo, swallow = bool(os.environ.get("ZS_ECHO")), bool(os.environ.get("ZS_SWALLOW"))
    show_typed = bool(os.environ.get("ZS_TYPED"))
    swallow_next = False
    buf = b""
    paste: list[bytes] = []
    typed = b""
    in_paste = False
    try:
        with open(out, "a") as f:
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                buf += chunk
                while buf:
                    if in_paste:
                        end = buf.find(END)
                        if end < 0:
                            keep = len(END) - 1  # an end marker may be split across reads
                            paste.append(buf[:-keep] if len(buf) > keep else b"")
                            buf = buf[-keep:] if len(buf) > keep else buf
                            break
                        paste.append(buf[:end])
                        buf = buf[end + len(END) :]
                        in_paste = False
                        swallow_next = swallow
                        if echo:
                            last = b"".join(paste).decode().splitlines()[-1:] or [""]
                            os.write(sys.stdout.fileno(), b"\r\x1b[K" + prompt + last[0].encode())
                        continue
                    start = buf.find(START)
                    cr = buf.find(b"\r")
                    if keys:
                        lf = buf.find(b"\n")
                        cr = lf if cr < 0 or 0 <= lf < cr else cr
                    if cr >= 0 and (start < 0 or cr < start):
                        typed += buf[:cr]
                        buf = buf[cr + 1 :]
                        if swallow_next:
                            swallow_next = False  # this Enter is eaten: nothing submitted
                            continue
                        record = {"paste": b"".join(paste).decode(), "typed": typed.decode()}
                        f.write(json.dumps(record) + "\n")
                        f.flush()
                        paste, typed = [], b""
                        shown = record["paste"].splitlines()[:1] or [""]
                        got = f"\x1b[K\r\nGOT {shown[0]}\r\n".encode()
                        os.write(sys.stdout.fileno(), got + prompt)
                        continue
                    if start >= 0:
                        typed += buf[:start]
                        buf = buf[start + len(START) :]
                        in_paste = True
                        continue
                    if len(buf) < len(START) and START.startswith(buf[:1]) and buf[:1] == b"\x1b":
                        break  # maybe a split start marker
                    if show_typed:
                        for key in buf.decode(errors="replace"):
                            if key == "\x7f":
                                typed = typed.decode(errors="replace")[:-1].encode()
                                os.write(sys.stdout.fileno(), b"\x08 \x08")
                            else:
                                typed += key.encode()
                                os.write(sys.stdout.fileno(), key.encode())
                        buf = b""
                        continue
                    typed += buf
                    buf = b""
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
