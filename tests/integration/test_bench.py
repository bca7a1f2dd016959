"""`zs bench` as a user runs it: a private router or a running one, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..helpers import Procs

ZS = [sys.executable, "-m", "zmqswarm.cli"]
ENV = {k: v for k, v in os.environ.items() if k != "ZS_ROUTER"}


def zs_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZS, "bench", *args], capture_output=True, text=True, timeout=50, env=ENV
    )


def test_closed_loop_json_counts_every_message() -> None:
    ran = zs_bench("--json", "-n", "1500", "--senders", "2", "--recipients", "3", "--peers", "5")
    assert ran.returncode == 0, ran.stderr
    r = json.loads(ran.stdout)
    assert r["system"] == "zmqswarm" and r["ok"] is True
    assert r["sent"] == r["expected"] == r["delivered"] == 3000
    assert r["missing"] == r["duplicates"] == r["out_of_order"] == r["unacked"] == 0
    assert r["msgs_per_s"] > 0 and r["seconds"] > 0
    assert r["broker_cpu_counted"] is True
    roles = r["cpu_us_per_msg_by_role"]
    assert set(roles) == {"senders", "recipients", "broker", "idle"}
    assert r["cpu_us_per_msg"] == pytest.approx(sum(roles.values()))
    assert r["spec"]["idle"] == 5 and r["latency_us"] == {}


def test_batches_through_a_journaled_router_count_every_message() -> None:
    ran = zs_bench("--json", "-n", "3000", "--recipients", "4", "--batch", "--journal")
    assert ran.returncode == 0, ran.stderr
    r = json.loads(ran.stdout)
    assert r["spec"]["variant"] == "journal+batch"
    assert r["sent"] == r["delivered"] == 3000 and r["ok"] is True


def test_open_loop_reports_latency(procs: Procs) -> None:
    procs.router("--no-journal")
    ran = zs_bench("--router", procs.url, "--json", "--rate", "1000", "--seconds", "1.5")
    assert ran.returncode == 0, ran.stderr
    r = json.loads(ran.stdout)
    assert r["delivered"] == r["expected"] == 1500 and r["ok"] is True
    assert r["broker_cpu_counted"] is False  # not our router: its CPU is not ours to count
    lat = r["latency_us"]
    assert set(lat) == {"p50", "p90", "p99", "p99.9", "max"}
    assert 0 < lat["p50"] <= lat["p99"] <= lat["max"]
    assert r["latency_samples"] > 0


def test_table_on_stdout() -> None:
    ran = zs_bench("-n", "500")
    assert ran.returncode == 0, ran.stderr
    assert "500 of 500" in ran.stdout and "ok: missing 0" in ran.stdout


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--size", "8"], 2, "'--size'"),
        (["--senders", "0"], 2, "'--senders'"),
        (["--router", "tcp://127.0.0.1:9", "--journal"], 2, "--journal is for the private"),
        (["--rate", "0.1", "--seconds", "1"], 2, "gives a sender no message"),
    ],
)
def test_bad_arguments_say_what(args: list[str], code: int, says: str) -> None:
    ran = zs_bench(*args)
    assert ran.returncode == code
    assert says in ran.stderr and ran.stdout == ""


def test_unreachable_router(tmp_path) -> None:
    ran = zs_bench("--router", f"ipc://{tmp_path}/nobody")
    assert ran.returncode == 3
    assert "did not answer" in ran.stderr
