"""`zs monitor` in a tmux pane while a thousand peers are connected and mail flows: what the
pane shows, read back with capture-pane."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import Procs, poll_until
from ..integration.crowd import Crowd


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_monitor_in_a_pane_names_peers_and_rates_under_a_thousand_peers(
    procs: Procs, tmux_socket: str, tmp_path: Path
) -> None:
    procs.router()
    crowd = Crowd(procs, procs.url, total=1000, processes=4)
    crowd.go()
    crowd.welcomed(timeout=30)
    procs.peer("recv", "sink", procs.url, "1000000", str(tmp_path / "sink.out"))
    procs.peer("send", "source", procs.url, "1000000", "sink", "500")  # 500 a second
    zs = [sys.executable, "-m", "zmqswarm.cli"]
    for topic, value in (("sink", "draining mail"), ("build/7", "73%")):  # what they are doing
        subprocess.run([*zs, "pub", "-r", procs.url, topic, value], check=True, timeout=30)
    tmux = ["tmux", "-L", tmux_socket]
    monitor = f"{sys.executable} -m zmqswarm.cli monitor --router {procs.url}"
    subprocess.run(
        [*tmux, "new-session", "-d", "-s", "watch", "-x", "80", "-y", "30", monitor], check=True
    )
    screen = [""]

    def shows_the_crowd_and_mail_flowing() -> bool:
        screen[0] = subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "watch"], capture_output=True, text=True
        ).stdout
        census = re.search(r"peers ([\d,]+) · online ([\d,]+)", screen[0])
        rate = re.search(r"accepted ([\d,]+)/s", screen[0])
        return bool(
            census
            and int(census.group(2).replace(",", "")) >= 1002  # the crowd, source and sink
            and rate
            and int(rate.group(1).replace(",", "")) > 0
            and "build/7" in screen[0]
        )

    shown = poll_until(shows_the_crowd_and_mail_flowing, 30)
    text = screen[0]
    assert shown, f"the pane never showed 1,002 online and mail flowing:\n{text}"
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert re.search(r"delivered [\d,]+/s  acked [\d,]+/s", text)
    assert "accept → ack p50" in text  # latency figures of the acks the sink sends
    names = [line.split()[0] for line in lines if line.startswith(("crowd", "sink", "source"))]
    assert len(names) >= 8 and sum(n.startswith("crowd") for n in names) >= 5, text
    more = re.search(r"… and ([\d,]+) more \(([\d,]+) online", text)
    assert more and int(more.group(1).replace(",", "")) >= 1002 - len(names), text
    assert re.search(r"build/7\s+│ 73%", text), text  # the topics panel
    assert re.search(r"sink\s+│ draining mail", text), text
    crowd.close()
