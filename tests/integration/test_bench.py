"""`zs bench` as a user runs it: a private router or a running one, real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ..helpers import Procs, stop_router
from . import test_security
from .test_security import Keyring

ZS = [sys.executable, "-m", "zmqswarm.cli"]
UNSET = ("ZS_ROUTER", "ZS_CURVE_SECRET", "ZS_ROUTER_KEY")  # a test's own keys, if any
ENV = {k: v for k, v in os.environ.items() if k not in UNSET}
keyring = test_security.keyring  # fixtures: keys for a router, alice, bob and eve (not let in)
secured = test_security.secured  # and a router that lets alice and bob in under their names


def zs_bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ZS, "bench", *args], capture_output=True, text=True, timeout=50, env=ENV | (env or {})
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
        (["--curve-secret", "x.key_secret"], 2, "the private router has no CURVE"),
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


# -- a CURVE router ----------------------------------------------------------------------------


def bench_router(procs: Procs, keyring: Keyring, tmp_path: Path) -> subprocess.Popen[str]:
    """A CURVE router whose [router.names] lets alice's key use the bench's names."""
    config = tmp_path / "router.toml"
    config.write_text('[router.names]\nalice = ["alice", "alice.*", "bench-*"]\n')
    secret = str(keyring.secret("router"))
    args = ["--curve-secret", secret, "--allow", str(keyring.allow), "--config", str(config)]
    return procs.router("--no-journal", *args)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("given", ["flags", "env", "config"])
def test_a_curve_router_carries_the_run_with_keys(
    procs: Procs, keyring: Keyring, tmp_path: Path, given: str
) -> None:
    """Senders, recipients, idle peers and the probe all reach it with alice's key, which
    ever way the keys are given; the router counts no refusal."""
    router = bench_router(procs, keyring, tmp_path)
    run = ["--json", "-n", "400", "--senders", "2", "--recipients", "2", "--peers", "3"]
    secret, router_key = str(keyring.secret("alice")), str(keyring.dir / "router.key")
    if given == "flags":
        ran = zs_bench(
            "--router", procs.url, *run, "--curve-secret", secret, "--router-key", router_key
        )
    elif given == "env":
        ran = zs_bench("--router", procs.url, *run, env=keyring.env("alice"))
    else:
        config = tmp_path / "client.toml"
        keys = f'curve-secret = "{secret}"\nrouter-key = "{router_key}"\n'
        config.write_text(f'[client]\nrouter = "{procs.url}"\n{keys}')
        ran = zs_bench("--config", str(config), *run)
    assert ran.returncode == 0, ran.stderr
    r = json.loads(ran.stdout)
    assert r["ok"] is True and r["delivered"] == r["expected"] == 800
    assert r["spec"]["curve"] is True and r["spec"]["address"] == procs.url
    assert "secret" not in ran.stdout and "public" not in ran.stdout  # the keys are not reported
    stats, _ = stop_router(router)
    assert not {k: n for k, n in stats.items() if ("refused" in k or "failed" in k) and n}


@pytest.mark.timeout(60)
def test_a_curve_router_refuses_a_run_without_keys_at_once(
    procs: Procs, secured: subprocess.Popen[str]
) -> None:
    ran = zs_bench("--router", procs.url, "-n", "100")
    assert ran.returncode == 8, ran.stderr
    assert "CURVE" in ran.stderr and "--curve-secret" in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr and ran.stdout == ""


@pytest.mark.timeout(60)
def test_a_key_not_let_use_the_bench_names_is_told_which(
    procs: Procs, keyring: Keyring, secured: subprocess.Popen[str]
) -> None:
    ran = zs_bench("--router", procs.url, "-n", "100", env=keyring.env("alice"))
    assert ran.returncode == 8, ran.stderr
    assert "may not use the name 'bench-" in ran.stderr and "[router.names]" in ran.stderr


@pytest.mark.timeout(60)
def test_the_private_router_ignores_curve_keys_in_the_environment(keyring: Keyring) -> None:
    ran = zs_bench("--json", "-n", "300", env=keyring.env("alice"))
    assert ran.returncode == 0, ran.stderr
    r = json.loads(ran.stdout)
    assert r["ok"] is True and r["spec"]["curve"] is False
