"""`zs demo` (`make demo`): a router and a few peers exchanging messages on a private ipc
endpoint, then one `zs agent --tagged` delivering into two bash panes of a private tmux server
(`tmux -L zs-demo-<pid>`), whose tasks answer the sender with `zs send`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

from zmqswarm.client.sync import Client
from zmqswarm.router.loop import Router


def demo_command() -> None:
    with tempfile.TemporaryDirectory(prefix="zs-demo-") as tmp:
        url = f"ipc://{tmp}/router"
        router = Router([url])
        thread = threading.Thread(target=router.run, name="router", daemon=True)
        thread.start()
        say = print
        say(f"router on {url}")
        names = ["planner", "coder", "reviewer"]
        clients = {n: Client(n, router=url) for n in names}
        tickets = []
        for i, (a, b) in enumerate([(x, y) for x in names for y in names if x != y]):
            tickets.append(clients[a].send(b, f"task {i} from {a}".encode(), notify=True))
        # "ghost" is offline: its mail waits in the router until it connects.
        tickets.append(clients["planner"].send("ghost", b"read this when you wake up"))
        for ticket in tickets[:-1]:
            ticket.wait("accepted", timeout=5)
        for name in names:
            for _ in range(2):
                msg = clients[name].recv(timeout=5)
                say(f"  {name:9} <- {msg.sender:9} {msg.text!r}  ticket {msg.ticket}")
        for ticket in tickets[:-1]:
            ticket.wait("delivered", timeout=5)
        say(f"all {len(tickets) - 1} tickets delivered; 'ghost' connects late:")
        with Client("ghost", router=url) as ghost:
            msg = ghost.recv(timeout=5)
            say(f"  ghost     <- {msg.sender:9} {msg.text!r}")
        start = time.perf_counter()
        n = 20_000
        for _ in range(n):
            clients["coder"].send("reviewer", b"x" * 64)
        for _ in range(n):
            clients["reviewer"].recv(timeout=10)
        rate = n / (time.perf_counter() - start)
        say(f"{n} messages coder -> reviewer, sync Client, exactly once: {rate:,.0f} msg/s")
        monitor_demo(url, say)
        tmux_demo(url, clients["planner"], say)
        for client in clients.values():
            client.close()
        router.stop()
        thread.join(5)
        say(f"router stats: {router.core.stats}")


def monitor_demo(url: str, say: Callable[[str], None]) -> None:
    """Three seconds of 5k msg/s under `zs monitor`'s view: live on a terminal, its last
    frame elsewhere (rich prints only that when output is not a terminal). Each worker
    thread makes its own Client: a Client belongs to the thread that made it."""
    from rich.console import Console
    from rich.live import Live

    from zmqswarm.errors import ZsTimeoutError
    from zmqswarm.observe.monitor import render
    from zmqswarm.observe.observer import Observer

    stop = threading.Event()
    sent, got = [0], [0]

    def send() -> None:
        with Client("streamer", router=url) as sender:
            due = time.monotonic()
            while not stop.is_set():
                sender.send_many("sink", [b"y" * 64] * 50)
                sent[0] += 50
                due += 0.01
                time.sleep(max(0.0, due - time.monotonic()))  # pacing, not synchronisation

    def receive() -> None:
        with Client("sink", router=url) as receiver:
            while not stop.is_set() or got[0] < sent[0]:
                try:
                    receiver.recv(timeout=0.5)
                    got[0] += 1
                except ZsTimeoutError:
                    if stop.is_set():
                        return

    workers = [threading.Thread(target=send), threading.Thread(target=receive)]
    for worker in workers:
        worker.start()
    observer = Observer(url)
    updates = observer.watch(tick=0.25)
    state = next(updates)
    say("zs monitor, while streamer sends sink 5,000 msg/s for 3 s:")
    console = Console()
    try:
        with Live(render(state, url=url), console=console, refresh_per_second=4) as live:
            end = time.monotonic() + 3
            for state in updates:
                live.update(render(state, url=url, silent=observer.silent))
                if time.monotonic() > end:
                    break
    finally:
        updates.close()
        stop.set()
        for worker in workers:
            worker.join(10)
    if not console.is_terminal:
        console.line()  # rich leaves its one printed frame without a newline
    say(f"  {sent[0]:,} sent, {got[0]:,} received; the monitor folded {state.seq} Updates")


def tmux_demo(url: str, planner: Client, say: object) -> None:
    """Two bash panes tagged as agents, served by one `zs agent --tagged`. The planner sends
    each a task; the task runs in the pane and answers with `zs send`, as an agent would."""
    assert callable(say)
    socket = f"zs-demo-{os.getpid()}"
    tmux = ["tmux", "-L", socket]
    zs = [sys.executable, "-m", "zmqswarm.cli"]
    bindir = os.path.dirname(sys.executable)  # the venv's, so that `zs` runs in the panes
    agent = None
    try:
        panes = {}
        for name in ("coder-2", "tester"):
            shell = (
                f"env PATH={bindir}:$PATH ZS_ROUTER={url} PS1='{name}$ ' bash --norc --noprofile"
            )
            panes[name] = subprocess.run(
                [*tmux, "new-session", "-d", "-s", name, "-x", "110", "-y", "14", "-P", "-F"]
                + ["#{pane_id}", shell],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            tag = [*zs, "agent", "tag", panes[name], name, "-L", socket, "--profile", "shell"]
            subprocess.run(tag, check=True)
        agent = subprocess.Popen([*zs, "agent", "--tagged", "-L", socket, "--router", url])
        served = ", ".join(f"{n} in {p}" for n, p in panes.items())
        say(f"\ntmux server -L {socket}: one zs agent --tagged serves {served}")
        tasks = {
            "coder-2": 'zs send planner "coder-2: implemented; $(ls /etc | wc -l) files in /etc"',
            "tester": "zs send planner \"tester: $(python3 -c 'print(6*7)') tests pass\"",
        }
        tickets = [planner.send(n, t.encode(), notify=True) for n, t in tasks.items()]
        for ticket in tickets:
            ticket.wait("delivered", timeout=30)  # acked by the agent after its Enter
            say(f"  {ticket} delivered: {ticket.note}")
        for _ in tasks:
            reply = planner.recv(timeout=30)  # the panes answer with `zs send`
            say(f"  planner   <- {reply.sender:9} {reply.text!r}")
        for name, pane in panes.items():
            shown = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", pane], capture_output=True, text=True
            ).stdout.rstrip()
            say(f"--- pane {pane} ({name}) ---\n{shown}")
        subprocess.run([*tmux, "kill-pane", "-t", panes["tester"]], check=True)
        say("killed tester's pane; zs peers (the agent reports each pane's state):")
        deadline = time.monotonic() + 10
        while "dead" not in (listing := zs_peers(url)) and time.monotonic() < deadline:
            time.sleep(0.05)  # poll interval of a deadline wait
        say(listing)
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        asked = [*tmux, "display-message", "-p", "#{socket_path}"]
        path = subprocess.run(asked, capture_output=True, text=True).stdout.strip()
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)
        if path.endswith(f"/{socket}") and os.path.exists(path):
            os.unlink(path)  # the demo leaves nothing behind it made


def zs_peers(url: str) -> str:
    from zmqswarm.observe.query import list_peers

    rows = [p for p in list_peers(url, timeout=5) if p.state]
    lines = [f"  {p.name:9} {'online' if p.online else 'offline':8} {p.state}" for p in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    demo_command()
