"""Two network namespaces joined by a veth pair, for network fault tests: the router's and
the peers'. Only the test's own processes live in them (``Procs.spawn(..., netns=...)``), so
a rule that drops packets there touches nothing else on the machine. Made and removed by
the ``net`` fixture (conftest.py); it skips, saying why, where they cannot be made."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

ROUTER_IP, PEER_IP = "10.231.9.1", "10.231.9.2"  # only inside the test's own namespaces
TABLE = "zsfault"  # the nft table a drop rule lives in

_serial = itertools.count()  # names unique per use: a namespace may outlive its test briefly


@dataclass
class Net:
    router_ns: str
    peer_ns: str
    tool: str  # nft or iptables
    dropping: bool = False  # a drop rule is in place (teardown removes it)


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=10)


def listed() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


@contextmanager
def namespaces() -> Iterator[Net]:
    """Make the pair (the router's side gets ROUTER_IP, the peers' PEER_IP); remove both
    namespaces, and any drop rule left in place, on the way out, whatever happened."""
    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces")
    if shutil.which("ip") is None:
        pytest.skip("needs iproute2's `ip` for network namespaces")
    tool = next((t for t in ("nft", "iptables") if shutil.which(t)), None)
    if tool is None:
        pytest.skip("needs nft or iptables to drop packets: apt-get install -y nftables")
    tag = f"{os.getpid() % 100_000}x{next(_serial)}"  # "x": pid 12 + 34 is not pid 123 + 4
    net = Net(f"zsr{tag}", f"zsp{tag}", tool)
    try:
        run("ip", "netns", "add", net.router_ns)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot create a network namespace: {exc.stderr.strip()}")
    failed = True
    try:
        run("ip", "netns", "add", net.peer_ns)
        run(
            "ip", "link", "add", f"zvr{tag}", "netns", net.router_ns, "type", "veth",
            "peer", "name", f"zvp{tag}", "netns", net.peer_ns,
        )  # fmt: skip
        for name, dev, ip in ((net.router_ns, "zvr", ROUTER_IP), (net.peer_ns, "zvp", PEER_IP)):
            run("ip", "-n", name, "addr", "add", f"{ip}/30", "dev", f"{dev}{tag}")
            run("ip", "-n", name, "link", "set", "lo", "up")
            run("ip", "-n", name, "link", "set", f"{dev}{tag}", "up")
        try:  # the packet filter must work inside a namespace, not only be installed
            listing = ["nft", "list", "ruleset"] if tool == "nft" else ["iptables", "-S"]
            run("ip", "netns", "exec", net.router_ns, *listing)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"{tool} does not work in a network namespace: {exc.stderr.strip()}")
        yield net
        failed = False
    finally:
        if net.dropping:
            subprocess.run(_drop_command(net, False), capture_output=True, timeout=10)
        for name in (net.router_ns, net.peer_ns):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        left = listed() & {net.router_ns, net.peer_ns}
        if left and not failed:  # a failure in flight says more than this would
            raise AssertionError(f"network namespaces left behind: {sorted(left)}")


def drop_router_to_peers(net: Net, on: bool) -> None:
    """Drop (or stop dropping) every packet the router's namespace sends to the peers':
    everything the router says to them, TCP's ACKs and SYN-ACKs included."""
    if on:
        rules = (
            f"table inet {TABLE} {{\n chain out {{\n"
            "  type filter hook output priority 0; policy accept;\n"
            f"  ip daddr {PEER_IP} drop\n }}\n}}\n"
        )
        cmd = _drop_command(net, True)
        subprocess.run(cmd, input=rules if net.tool == "nft" else None, check=True, text=True)
    else:
        run(*_drop_command(net, False))
    net.dropping = on


def _drop_command(net: Net, on: bool) -> list[str]:
    exec_ = ["ip", "netns", "exec", net.router_ns]
    if net.tool == "nft":
        if on:
            return [*exec_, "nft", "-f", "-"]  # the table comes on stdin
        return [*exec_, "nft", "delete", "table", "inet", TABLE]
    return [*exec_, "iptables", "-A" if on else "-D", "OUTPUT", "-d", PEER_IP, "-j", "DROP"]
