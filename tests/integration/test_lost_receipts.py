"""Lost receipts only: for 15 s the network drops everything the router sends to the senders
(its receipts, and TCP's ACKs and SYN-ACKs: that is how it looks on the wire), while the
recipient, on the router's side, is untouched.

The router (journal on, in tmp) runs in one network namespace, the senders in another,
over tcp; the recipient in the router's. What the senders had on the wire when the drop
began reaches the router and is accepted, but its receipts are lost. ZMTP heartbeats (0.8 s)
then tear both ends of each sender's connection down, and no new one opens until the heal.
Each sender's resend timer (5 s) meanwhile marks what is unreceipted for sending again; once
its link is back it says Hello and, pipelined behind it, resends those, before the Welcome's
``acked`` (the stream's watermark) could tell it they were in. So the router sees again
messages it accepted during the drop: it must receipt them from its dedup state and store
none of them twice.

Each sender (peer.py ``feed``) logs when each ticket was accepted; the recipient (``take``)
logs what it handed to its application. The checks count, from those logs and the router's
counters."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from zmqswarm.observe import snapshot

from ..helpers import PEER, Procs, handed, last_line, router_stats, wait_for
from .netns import ROUTER_IP, Net, drop_router_to_peers

SENDERS = 4
RATE = 250  # messages a second, each sender
COUNT = 6000  # each sender: 24 s at RATE, before, through and after the drop
DROP = 15.0
RESUME_BOUND = 5.0  # s from the heal to every sender's first receipt


@dataclass
class Sent:
    """One sender's history: when each ticket was accepted, and what failed."""

    accepted: dict[int, float]  # i -> time.monotonic() when the sender saw it accepted
    failed: list[str]


def history(path: Path) -> Sent:
    text = path.read_text() if path.exists() else ""
    sent = Sent({}, [])
    for line in text[: text.rfind("\n") + 1].splitlines():  # complete lines only
        kind, *rest = line.split(" ")
        if kind == "ok":
            sent.accepted[int(rest[0])] = int(rest[1]) / 1e9
        elif kind in ("fail", "info"):
            sent.failed.append(line)
    return sent


# signal, not the suite's thread method: a timeout raises here and the fixtures' teardown
# runs (processes reaped, drop rule and namespaces removed) instead of the process exiting.
@pytest.mark.timeout(120, method="signal")
def test_lost_receipts_for_15_s_are_given_again_from_the_dedup_state_and_nothing_is_stored_twice(
    net: Net, procs: Procs, tmp_path: Path
) -> None:
    tcp = f"tcp://{ROUTER_IP}:5555"
    admin = procs.url  # ipc: a path-named socket, reachable from outside the namespaces
    router = procs.spawn(
        "-m", "zmqswarm.cli", "router", "--bind", tcp, "--bind", admin, "--insecure",
        "--data-dir", str(tmp_path / "journal"), netns=net.router_ns,
    )  # fmt: skip
    wait_for(Path(admin[len("ipc://") :]).exists, 10, "the router's socket")
    out, done = tmp_path / "carol.out", tmp_path / "carol.done"
    take = ("take", "carol", tcp, str(out), "--until", str(done))
    carol = procs.spawn(PEER, *take, netns=net.router_ns)  # the router's side: no drop
    names = [f"s{k}" for k in range(SENDERS)]
    logs = {name: tmp_path / f"{name}.history" for name in names}

    def feed(name: str) -> subprocess.Popen[str]:
        args = (name, tcp, str(COUNT), "carol", str(logs[name]), "--rate", str(RATE))
        return procs.spawn(PEER, "feed", *args, netns=net.peer_ns)

    senders = [feed(name) for name in names]

    def stats() -> dict[str, int]:
        return snapshot(admin).stats

    def receipted_after(t: float) -> bool:
        return all(any(at > t for at in history(logs[n]).accepted.values()) for n in names)

    wait_for(lambda: receipted_after(0.0) and len(handed(out)) >= 1000, 20, "traffic")
    before = stats()
    drop_router_to_peers(net, True)
    dropped = time.monotonic()
    wait_for(
        lambda: stats()["disconnected"] >= before["disconnected"] + SENDERS,
        10,
        "the router ending every sender's session (its ZMTP heartbeat gave up)",
    )
    torn = time.monotonic() - dropped
    frozen = stats()["accepted"]  # no sender's connection is up: nothing more can come in
    time.sleep(max(0.0, dropped + DROP - time.monotonic()))  # the fault itself, not a sync
    at_heal = stats()
    healed = time.monotonic()  # just before the rule goes: delays after it are upper bounds
    drop_router_to_peers(net, False)
    wait_for(lambda: receipted_after(healed), 10, "receipts to every sender after the heal")

    for sender in senders:
        assert last_line(sender, 60) == "DONE"
    wait_for(lambda: len(handed(out)) >= SENDERS * COUNT, 30, "everything handed over")
    done.touch()
    assert last_line(carol, 30).startswith("DONE")
    end = router_stats(router)

    sent = {n: history(logs[n]) for n in names}
    got = handed(out)
    times = {n: sorted(s.accepted.values()) for n, s in sent.items()}  # when it heard of each
    # When each sender first heard of an acceptance after the heal.
    resume = {n: next(t for t in ts if t > healed) - healed for n, ts in times.items()}
    # Receipts that reached a sender in the drop, after those on their way when it began.
    during = {n: sum(dropped + 1 < t < healed for t in ts) for n, ts in times.items()}
    receipted_before = sum(t < healed for ts in times.values() for t in ts)
    # Accepted by the router before the heal, its receipt never seen until after it.
    lost = at_heal["accepted"] - receipted_before
    print(  # noqa: T201 - the report's numbers (pytest -s)
        f"\n{net.tool}, {SENDERS} senders x {COUNT}: sessions torn down {torn:.2f} s into the"
        f" drop; receipts lost {lost}; router duplicates {end['duplicates']};"
        f" receipts resumed {min(resume.values()):.3f} s after the heal (every sender by"
        f" {max(resume.values()):.3f} s); {end}"
    )

    # Every ticket was accepted, and handed to the application exactly once, in order.
    for name, s in sent.items():
        assert s.failed == [], f"{name}: {s.failed[:3]}"
        assert sorted(s.accepted) == list(range(COUNT)), f"{name}: tickets never accepted"
        seqs = [h.seq for h in got if h.sender == name]
        assert len(seqs) == len(set(seqs)), f"{name}: handed over twice"
        assert seqs == sorted(seqs), f"{name}: order broken"
        assert set(seqs) == set(s.accepted), f"{name}: accepted tickets not handed over"
    assert {h.sender for h in got} == set(names)
    # Stored once each: a resend accepted again would be delivered again, and the
    # recipient's own dedup would hide it from its log; the router's counters cannot.
    assert end["accepted"] == SENDERS * COUNT, "the router stored a message twice"
    assert end["delivered"] == SENDERS * COUNT
    # The fault did what it says: receipts stopped, the router kept what had come in.
    assert all(v == 0 for v in during.values()), f"receipts got through the drop: {during}"
    assert at_heal["accepted"] == frozen, "a sender's message got in while its link was down"
    assert lost > 0, "no receipt was lost: the drop missed the traffic"
    # Each message whose receipt was lost sat unreceipted for over 10 s: the resend timer
    # (5 s, +-20 %) had it sent again behind the Hello, which the router deduplicated.
    assert end["duplicates"] >= lost, (
        f"{lost} receipts lost, {end['duplicates']} resends deduplicated: the senders no"
        " longer resend behind their Hello, or the router stored resends as new"
    )
    assert max(resume.values()) < RESUME_BOUND, f"receipts resumed after {resume} s"
