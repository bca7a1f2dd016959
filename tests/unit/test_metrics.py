"""The Prometheus page of `zs router --metrics`, rendered from a RouterCore with no socket and
read back with prometheus_client's own parser."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from zmqswarm.errors import ConfigError
from zmqswarm.protocol import (
    PROTOCOL_VERSION,
    Ack,
    Deliver,
    Heartbeat,
    Hello,
    RouterCore,
    Send,
    SendItem,
    decode,
    encode,
)
from zmqswarm.protocol.state_feed import LatencyWindow
from zmqswarm.router.metrics import LatencyRing, is_loopback, parse_address, render_metrics


def families(page: bytes) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """name -> {labels: value}, every sample of the page, parsed as Prometheus parses it."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(page.decode()):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            out.setdefault(sample.name, {})[labels] = sample.value
    return out


def value(page: bytes, name: str, **labels: str) -> float:
    return families(page)[name][tuple(sorted(labels.items()))]


def test_the_page_names_every_counter_gauge_and_the_latency_summary() -> None:
    core = RouterCore(epoch=0xABC)
    ring = LatencyRing()
    core.latency.on_reset = ring.fold
    core.handle(b"alice/1", [encode(Hello(PROTOCOL_VERSION, "alice", 1, send_only=True))], 0.0)
    core.handle(b"bob/1", [encode(Hello(PROTOCOL_VERSION, "bob", 1))], 0.0)
    two = Send(1, [SendItem(1, "bob"), SendItem(2, "carol")])
    core.handle(b"alice/1", [encode(two), b"a", b"b"], 1.0)
    delivers = [decode(p[0]) for i, p, _ in core.take_output(1.0) if i == b"bob/1"]
    sid = next(d.session for d in delivers if isinstance(d, Deliver))
    core.handle(b"bob/1", [encode(Ack(sid, 1))], 1.5)
    core.handle(b"nobody/1", [encode(Heartbeat(1))], 1.5)  # no Hello: a Nack NOT_WELCOMED
    core.take_updates(2.0)  # closes the latency window: folded into the ring
    page = render_metrics(core, ring, 2.0)
    text = page.decode()
    assert value(page, "zmqswarm_messages_accepted_total") == 2
    assert value(page, "zmqswarm_messages_acked_total") == 1
    assert value(page, "zmqswarm_nacks_total", reason="not_welcomed") == 1
    assert value(page, "zmqswarm_peers_online") == 1  # bob; alice only sends
    assert value(page, "zmqswarm_sessions") == 2
    assert value(page, "zmqswarm_messages_queued") == 1  # carol's, never connected
    assert value(page, "zmqswarm_oldest_waiting_seconds") == 1.0
    assert value(page, "zmqswarm_router_info", epoch="abc") == 1
    # Accept at 1.0, ack at 1.5: 0.5 s, at most 1/8 over.
    assert value(page, "zmqswarm_ack_latency_seconds_count") == 1
    for q in ("0.5", "0.9", "0.99"):
        assert 0.5 <= value(page, "zmqswarm_ack_latency_seconds", quantile=q) <= 0.5 * 9 / 8
    assert 0.5 <= value(page, "zmqswarm_ack_latency_seconds_sum") <= 0.5 * 9 / 8
    assert value(page, "process_resident_memory_bytes") > 0
    for family in text_string_to_metric_families(text):
        assert f"# HELP {family.name}" in text and f"# TYPE {family.name}" in text
        if family.type == "counter":  # the parser strips _total from a counter's name
            assert all(s.name.endswith("_total") for s in family.samples)
        assert family.name.startswith(("zmqswarm_", "process_"))


def test_a_counter_the_page_does_not_know_is_still_exported() -> None:
    core = RouterCore(epoch=1)
    core.stats["published"] = 3  # a counter added later (topics, say)
    page = render_metrics(core, None, 0.0)
    assert value(page, "zmqswarm_published_total") == 3
    assert "zmqswarm_ack_latency_seconds" not in page.decode()


def test_latency_quantiles_cover_about_the_last_minute() -> None:
    clock = [0.0]
    ring = LatencyRing(clock=lambda: clock[0])
    assert ring.quantiles() == {}
    window = LatencyWindow()
    window.on_reset = ring.fold
    for _ in range(90):
        window.record(0.001)
    for _ in range(10):
        window.record(1.0)
    window.reset()
    figures = ring.quantiles()
    assert 0.001 <= figures[0.5] <= 0.001 * 9 / 8 and 1.0 <= figures[0.99] <= 9 / 8
    clock[0] = 30.0
    window.record(0.002)
    window.reset()
    assert ring.count == 101 and len(ring.slots) == 2
    clock[0] = 61.0  # the first slot (begun at 0) is out of the window; the 0.002 remains
    assert 0.002 <= ring.quantiles()[0.99] <= 0.002 * 9 / 8
    clock[0] = 200.0
    assert ring.quantiles() == {} and ring.count == 101  # _count runs from the start


@pytest.mark.parametrize(
    "address, expected",
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:0", ("[::1]", 0))],
)
def test_addresses(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["9464", "127.0.0.1", ":9464", "host:http", "h:70000"])
def test_bad_addresses_are_config_errors(address: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_address(address)


def test_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("[::1]") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("eth0")
