"""The delivery contract, end to end, with real processes and real sockets."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from zmqswarm import ClientOptions

from ..helpers import Procs, check_exactly_once_in_order, read_lines, wait_for

pytestmark = pytest.mark.timeout(240)


@pytest.mark.slow
def test_ten_senders_ten_recipients_half_offline(procs: Procs, tmp_path: Path) -> None:
    """10 senders x 10k messages to 10 recipients; 5 recipients start only after every
    send is receipted (store and forward). Every message once, per-pair order kept."""
    senders, recipients, per_sender = 10, 10, 10_000
    procs.router()
    rnames = [f"r{i}" for i in range(recipients)]
    outs = {r: tmp_path / f"{r}.out" for r in rnames}
    per_pair = per_sender // recipients
    early = [
        procs.peer("recv", r, procs.url, str(senders * per_pair), str(outs[r])) for r in rnames[:5]
    ]
    sends = [
        procs.peer("send", f"s{i}", procs.url, str(per_sender), ",".join(rnames))
        for i in range(senders)
    ]
    for proc in sends:
        out, err = proc.communicate(timeout=180)
        assert out.strip() == "DONE", err
    late = [
        procs.peer("recv", r, procs.url, str(senders * per_pair), str(outs[r])) for r in rnames[5:]
    ]
    for proc in early + late:
        out, err = proc.communicate(timeout=120)
        assert out.strip() == "DONE", err
    for r in rnames:
        check_exactly_once_in_order(
            read_lines(outs[r]), {f"s{i}": per_pair for i in range(senders)}
        )


def test_recipient_killed_mid_stream_loses_nothing(procs: Procs, tmp_path: Path) -> None:
    """SIGKILL the recipient mid-stream, start it again: nothing lost, order kept, and the
    only messages it sees twice are the ones it had not acked when it died (attempt > 1)."""
    procs.router()
    out = tmp_path / "bob.out"
    total = 20_000
    sender = procs.peer("send", "alice", procs.url, str(total), "bob")
    bob = procs.peer("recv", "bob", procs.url, str(total), str(out))
    wait_for(lambda: len(read_lines(out)) > 3000, 60, "bob to get 3000 messages")
    bob.send_signal(signal.SIGKILL)
    bob.wait(10)
    before = read_lines(out)
    bob = procs.peer("recv", "bob", procs.url, str(total), str(out))
    assert sender.communicate(timeout=120)[0].strip() == "DONE"
    wait_for(
        lambda: {p for _, p, _ in read_lines(out)} >= {f"alice:{i}" for i in range(total)},
        90,
        "every message",
    )
    lines = read_lines(out)
    seen: dict[str, int] = {}
    for _, payload, attempt in lines:
        if payload in seen:
            assert attempt > 1, f"{payload} handed twice without being redelivered"
        seen[payload] = seen.get(payload, 0) + 1
    dupes = [p for p, n in seen.items() if n > 1]
    window = ClientOptions().recv_window
    assert len(dupes) <= window, "more duplicates than the recipient's credit window"
    after = lines[len(before) :]
    seqs = [int(p.split(":")[1]) for _, p, _ in after]
    assert seqs == sorted(seqs), "order broken after the restart"
    assert len(seen) == total


def test_router_restart_resends_everything_unreceipted(procs: Procs, tmp_path: Path) -> None:
    """SIGTERM the router while a sender keeps sending, start a new one on the same endpoint:
    the sender resends what was not receipted; every message arrives once, in order."""
    router = procs.router()
    out = tmp_path / "bob.out"
    total = 20_000
    bob = procs.peer("recv", "bob", procs.url, str(total), str(out))
    sender = procs.peer("send", "alice", procs.url, str(total), "bob")
    wait_for(lambda: len(read_lines(out)) > 2000, 60, "traffic")
    router.send_signal(signal.SIGTERM)
    assert router.wait(10) == 0
    procs.router()
    assert sender.communicate(timeout=120)[0].strip() == "DONE"
    assert bob.communicate(timeout=120)[0].strip() == "DONE"
    check_exactly_once_in_order(read_lines(out), {"alice": total})
