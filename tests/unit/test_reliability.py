"""Exactly once, in order per pair, whatever the network does to the frames."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from .sim import Sim

NAMES = ["a", "b", "c"]
names = st.sampled_from(NAMES)


class Network(RuleBasedStateMachine):
    """Any interleaving of sends, deliveries, broken connections, duplicates and overtakes."""

    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim(NAMES, window=8, recv_window=4)

    @rule(sender=names, to=names, n=st.integers(1, 5))
    def send(self, sender: str, to: str, n: int) -> None:
        for _ in range(n):
            self.sim.send(sender, to)

    @rule(name=names, index=st.integers(0, 3))
    def frame_to_router(self, name: str, index: int) -> None:
        self.sim.to_router(name, index)  # index > 0: this frame overtakes older ones

    @rule(name=names, index=st.integers(0, 3))
    def frame_to_client(self, name: str, index: int) -> None:
        self.sim.to_client(name, index)

    @rule(name=names, up=st.booleans(), at=st.integers(0, 3), router_saw_it=st.booleans())
    def connection_breaks(self, name: str, up: bool, at: int, router_saw_it: bool) -> None:
        self.sim.break_link(name, up, at, router_saw_it)

    @rule(name=names, up=st.booleans())
    def duplicate(self, name: str, up: bool) -> None:
        link = (self.sim.up if up else self.sim.down)[name]
        if link:
            link.append(link[0])  # the copy arrives late: a duplicate that is also reordered

    @rule(name=names, router_saw_it=st.booleans())
    def connection_drops_both_ways(self, name: str, router_saw_it: bool) -> None:
        self.sim.up[name].clear()
        self.sim.break_link(name, False, 0, router_saw_it)

    @rule(dt=st.sampled_from([0.1, 0.5, 1.5, 4.0]))
    def time_passes(self, dt: float) -> None:
        self.sim.advance(dt)

    @invariant()
    def order_and_uniqueness_hold_at_every_step(self) -> None:
        for key, got in self.sim.got.items():
            assert got == self.sim.sent[key][: len(got)], f"{key}: {got}"

    @rule()
    def everything_arrives_once_the_network_heals(self) -> None:
        self.sim.settle()
        assert not self.sim.failed
        for key, sent in self.sim.sent.items():
            assert self.sim.got[key] == sent


Network.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestNetwork = Network.TestCase


@settings(max_examples=60, deadline=None)
@given(
    plan=st.lists(st.tuples(names, names), min_size=1, max_size=40),
    loss=st.lists(st.booleans(), max_size=80),
)
def test_lossy_links_deliver_everything_once(plan: list[tuple[str, str]], loss: list[bool]) -> None:
    sim = Sim(NAMES, window=4, recv_window=2)
    for sender, to in plan:
        sim.send(sender, to)
    for drop in loss:  # alternate a lossy step with a normal one
        for name in NAMES:
            if drop and (sim.up[name] or sim.down[name]):
                sim.break_link(name, bool(sim.up[name]), 0, router_saw_it=False)
            sim.to_router(name)
            sim.to_client(name)
        sim.advance(0.3)
    sim.settle()
    assert dict(sim.got) == dict(sim.sent)
