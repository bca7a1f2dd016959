"""`zs router --metrics`: a real router process scraped over HTTP, as Prometheus would."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import zmq
from prometheus_client.parser import text_string_to_metric_families

from zmqswarm import Client
from zmqswarm.protocol import Heartbeat, encode

from ..helpers import Procs, wait_for

ZS = [sys.executable, "-m", "zmqswarm.cli"]


def metrics_url(router: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The URL the router logs it serves metrics on (it asked for port 0)."""
    assert router.stderr is not None
    fd = router.stderr.fileno()  # read raw: a text stream's buffer hides lines from select
    deadline = time.monotonic() + timeout
    seen = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            seen += os.read(fd, 65536)
            for line in seen.decode().splitlines():
                if "serving metrics on " in line:
                    return line.rsplit(" ", 1)[1].strip()
    raise AssertionError(f"no metrics URL logged within {timeout} s: {seen.decode()}")


def scrape(url: str) -> dict[str, float]:
    """Every sample of the page by name (labels as name{k=v,...}), via the reference parser."""
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = answer.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def test_counters_gauges_and_latency_move_as_mail_flows(procs: Procs) -> None:
    router = procs.router("--metrics", "127.0.0.1:0")
    url = metrics_url(router)
    assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
    before = scrape(url)
    assert before["zmqswarm_messages_accepted_total"] == 0
    assert before["zmqswarm_ack_latency_seconds_count"] == 0
    assert before["process_resident_memory_bytes"] > 0
    with Client("alice", router=procs.url) as alice, Client("bob", router=procs.url) as bob:
        for i in range(20):
            alice.send("bob", b"%d" % i)
        assert [bob.recv(timeout=10).payload for _ in range(20)] == [b"%d" % i for i in range(20)]
        alice.send("carol", b"for later").wait("accepted")
        bob.poll(0.1)  # the last acks leave

        def moved() -> bool:
            now = scrape(url)
            return (
                now["zmqswarm_messages_acked_total"] == 20
                and now["zmqswarm_ack_latency_seconds_count"] >= 1  # after the next Update
                and now["zmqswarm_peers_online"] == 2
            )

        wait_for(moved, 10, "acks, latency and both peers in the metrics")
        after = scrape(url)
    assert after["zmqswarm_messages_accepted_total"] == 21
    assert after["zmqswarm_messages_delivered_total"] == 20
    assert after["zmqswarm_messages_queued"] == 1  # carol's
    assert 0 < after["zmqswarm_ack_latency_seconds{quantile=0.5}"] < 10
    assert after["process_cpu_seconds_total"] >= before["process_cpu_seconds_total"]


def test_nacks_by_reason_and_requests_in_pieces(procs: Procs) -> None:
    router = procs.router("--metrics", "127.0.0.1:0")
    url = metrics_url(router)
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context.instance()
    rogue = ctx.socket(zmq.DEALER)
    rogue.setsockopt(zmq.LINGER, 0)
    rogue.connect(procs.url)
    rogue.send(encode(Heartbeat(1)))  # before any Hello: Nack NOT_WELCOMED
    try:
        wait_for(
            lambda: scrape(url).get("zmqswarm_nacks_total{reason=not_welcomed}") == 1,
            10,
            "the Nack counted by reason",
        )
    finally:
        rogue.close()
    host, port = url[len("http://") :].split("/")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(b"GET /metrics HTTP/1.1\r\n")  # the head in two pieces
        time.sleep(0.1)  # long enough for the router to look at a half request first
        raw.sendall(b"Host: x\r\n\r\n")
        answer = b""
        while chunk := raw.recv(65536):  # the router closes the connection after the page
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and b"zmqswarm_sessions " in answer
    try:
        urllib.request.urlopen(url.replace("/metrics", "/nothing"), timeout=5)
        raise AssertionError("expected a 404")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404


def test_metrics_from_the_config_file_and_a_bad_address(procs: Procs, tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text('[router]\nmetrics = "127.0.0.1:0"\n')
    router = procs.router("--config", str(config))
    assert scrape(metrics_url(router))["zmqswarm_peers_online"] == 0
    bad = subprocess.run(
        [*ZS, "router", "--bind", f"ipc://{tmp_path}/r2", "--metrics", "9464"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 6 and bad.stderr.count("\n") == 1, bad.stderr
    assert "expected HOST:PORT" in bad.stderr
