# The README's two commands: `make demo` and `make test`. Both bootstrap everything they need.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: all test lint unit demo bench bench-deps bench-peers clean tmux nft

all: test

# An editable install is not byte-compiled: where PYTHONDONTWRITEBYTECODE is set (as on this
# machine), every `zs send` would compile what it imports, each time (~20 ms here).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q zmqswarm cli >/dev/null
	touch $(STAMP)

tmux:
	@command -v tmux >/dev/null 2>&1 || { \
	  echo "installing tmux with apt-get"; \
	  (apt-get update -qq && apt-get install -y -qq tmux) || \
	  (sudo apt-get update -qq && sudo apt-get install -y -qq tmux); }

# The one-way network drop test runs inside network namespaces it makes, with nft; without
# nft (or root) it skips and says why.
nft:
	@command -v nft >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { \
	  echo "installing nftables with apt-get"; \
	  (apt-get update -qq && apt-get install -y -qq nftables) || true; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two streams side by side, the tmux tests and the rest (tests/conftest.py): each mostly waits.
# Then, alone, the tests that assert a time budget (or load the machine): marked solo.
test: $(STAMP) tmux nft lint
	$(BIN)/pytest -n 2 -m "not solo"
	$(BIN)/pytest -m solo

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

demo: $(STAMP) tmux
	$(BIN)/zs demo

bench: $(STAMP)
	$(BIN)/python -m bench.throughput
	$(BIN)/python -m bench.latency

# bench/peers measures zmqswarm against NATS JetStream and Redis Streams: Debian's brokers
# (started by the bench itself, each on a free loopback port; never as services) and their
# Python clients, hdrhistogram and matplotlib (the `bench` extra; neither the library, `zs
# bench` nor the tests need them).
bench-deps: $(STAMP)
	@{ command -v nats-server && command -v redis-server; } >/dev/null 2>&1 || { \
	  echo "installing nats-server and redis-server with apt-get"; \
	  (apt-get update -qq && apt-get install -y -qq nats-server redis-server) || \
	  (sudo apt-get update -qq && sudo apt-get install -y -qq nats-server redis-server); }
	$(BIN)/python -m pip install -q -e '.[test,bench]'

bench-peers: bench-deps
	$(BIN)/python -m bench.peers --plots docs/img

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
