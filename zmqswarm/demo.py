"""`make demo`: a router and a few peers exchanging messages on a private ipc endpoint, then
two `zs agent`s delivering into panes of a private tmux server (`tmux -L zs-demo-<pid>`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time

from zmqswarm.client import Client
from zmqswarm.router import Router


def main() -> None:
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
        tmux_demo(url, clients["planner"], say)
        for client in clients.values():
            client.close()
        router.stop()
        thread.join(5)
        say(f"router stats: {router.core.stats}")


def tmux_demo(url: str, planner: Client, say: object) -> None:
    """Two panes running `cat` (a program with no prompt), each served by a `zs agent`."""
    assert callable(say)
    socket = f"zs-demo-{os.getpid()}"
    tmux = ["tmux", "-L", socket]
    agents: list[subprocess.Popen[bytes]] = []
    try:
        panes = {}
        for name in ("coder-2", "tester"):
            panes[name] = subprocess.run(
                [*tmux, "new-session", "-d", "-s", name, "-x", "100", "-y", "12", "-P", "-F"]
                + ["#{pane_id}", "stty -echo; cat"],  # show each message once
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            agents.append(
                subprocess.Popen(
                    [sys.executable, "-m", "zmqswarm.cli", "agent", "--name", name]
                    + ["--pane", panes[name], "-L", socket, "--router", url]
                )
            )
        served = ", ".join(f"{n} in {p}" for n, p in panes.items())
        say(f"tmux server -L {socket}: zs agent for {served}")
        tickets = [
            planner.send("coder-2", b"implement the retry in client.py", notify=True),
            planner.send("tester", b"run the fault tests\nand report flakes", notify=True),
            planner.send("coder-2", b"then rebase on main", notify=True),
        ]
        for ticket in tickets:
            ticket.wait("delivered", timeout=30)  # acked by each agent after its Enter
        for name, pane in panes.items():
            shown = subprocess.run(
                [*tmux, "capture-pane", "-p", "-t", pane], capture_output=True, text=True
            ).stdout.rstrip()
            say(f"--- pane {pane} ({name}) ---\n{shown}")
    finally:
        for agent in agents:
            agent.terminate()
            agent.wait(10)
        subprocess.run([*tmux, "kill-server"], capture_output=True, check=False)


if __name__ == "__main__":
    main()
