"""Configs load typed; every example in configs/ loads; typos fail loudly."""

from __future__ import annotations

from pathlib import Path

import pytest

from zmqswarm import ConfigError, load_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_example_config_loads(path: Path) -> None:
    load_config(path)


def test_examples_exist() -> None:
    assert {p.name for p in CONFIGS} >= {"router.example.toml", "client.example.toml"}


def test_values_reach_the_options(tmp_path: Path) -> None:
    path = tmp_path / "zs.toml"
    path.write_text(
        "[router]\nheartbeat = 0.25\nmax-attempts = 3\nmax-mailboxes = 9\nbind = ['ipc:///x']\n"
        "[client]\nmax-outbox = 7\nrecv-window = 5\nrouter = 'tcp://127.0.0.1:1'\n"
    )
    cfg = load_config(path)
    router, client = cfg.router.options(), cfg.client.options()
    assert (router.heartbeat, router.max_attempts, router.max_mailboxes) == (0.25, 3, 9)
    assert (client.max_outbox, client.recv_window) == (7, 5)
    assert cfg.router.publish is None  # the default: one PUB beside each bind


def test_publish_endpoints_are_configured(tmp_path: Path) -> None:
    path = tmp_path / "zs.toml"
    path.write_text("[router]\npublish = []\n")
    assert load_config(path).router.publish == []
    path.write_text("[router]\npublish = 'ipc:///x.pub'\n")  # a list, not a string
    with pytest.raises(ConfigError):
        load_config(path)


@pytest.mark.parametrize(
    "text",
    ["[router]\nmax-payloda = 5\n", "[routr]\n", "[router]\nheartbeat = 'soon'\n", "not toml ["],
)
def test_bad_config_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")


def test_topic_limits_reach_the_router(tmp_path: Path) -> None:
    path = tmp_path / "zs.toml"
    path.write_text("[router]\ntopic-interval = 0.1\nmax-topic-value = 100\nmax-topics = 5\n")
    options = load_config(path).router.options()
    assert (options.topic_interval, options.max_topic_value, options.max_topics) == (0.1, 100, 5)
