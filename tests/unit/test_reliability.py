"""The delivery contract, as properties: whatever the network, the router and the peers do,
nothing is handed over twice by one process, every pair stays in order, a message is handed
over again only as a later delivery of it (never by a stopped holder after its successor), and
once the network heals every message is delivered or accounted for (a ttl, a dead letter, a
failed ticket, or a receipt a router without a journal took with it when it died)."""

from __future__ import annotations

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from .sim import Sim

NAMES = ["a", "b", "c"]
names = st.sampled_from(NAMES)


class Network(RuleBasedStateMachine):
    """Any interleaving of sends, deliveries, broken connections, duplicated and overtaking
    frames, out-of-order acks, router restarts, takeovers and stopped holders replaced."""

    def __init__(self) -> None:
        super().__init__()
        # c acks by hand, in any order (auto_ack=False); b and c take their messages when the
        # test says (mail waits in them); max_attempts low enough to be hit
        self.sim = Sim(
            NAMES, window=8, recv_window=4, manual=("c",), slow=("b", "c"), max_attempts=4
        )

    @rule(sender=names, to=names, n=st.integers(1, 4), notify=st.booleans(), ttl=st.booleans())
    def send(self, sender: str, to: str, n: int, notify: bool, ttl: bool) -> None:
        for _ in range(n):
            self.sim.send(sender, to, notify=notify, ttl=ttl)

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
        link = self.sim.links[self.sim.identity(name)][0 if up else 1]
        if link:
            link.append(link[0])  # the copy arrives late: a duplicate that is also reordered

    @rule(name=st.sampled_from(["b", "c"]))
    def a_slow_application_takes_one(self, name: str) -> None:
        self.sim.app_takes(name)

    @rule(index=st.integers(0, 7))
    def an_ack_out_of_order(self, index: int) -> None:
        self.sim.ack_held("c", index)

    @rule()
    def router_restarts(self) -> None:
        self.sim.restart_router()

    @rule(name=names)
    def a_newcomer_takes_the_name_over(self, name: str) -> None:
        self.sim.take_over(name)

    @rule(name=names, stopped_for=st.sampled_from([1.0, 3.0]))
    def a_stopped_holder_is_replaced(self, name: str, stopped_for: float) -> None:
        self.sim.stop_and_replace(name, stopped_for)

    @rule()
    def stopped_holders_wake(self) -> None:
        self.sim.wake()

    @rule()
    def older_incarnations_ask_for_mail(self) -> None:
        self.sim.retired_apps_take()

    @rule(dt=st.sampled_from([0.1, 0.5, 1.5, 4.0]))
    def time_passes(self, dt: float) -> None:
        self.sim.advance(dt)

    @invariant()
    def nothing_twice_in_order_and_never_stale(self) -> None:
        self.sim.ledger.check()

    @invariant()
    def the_router_holds_each_message_once(self) -> None:
        held = [
            (e.sender, e.epoch, e.seq)
            for mb in self.sim.router.delivery.mailboxes.values()
            for e in [*mb.queue, *(entry for _, entry in mb.inflight)]
        ]
        assert len(held) == len(set(held)), "a message stored twice"

    @rule()
    def everything_is_accounted_for_once_the_network_heals(self) -> None:
        self.sim.settle()
        ledger = self.sim.ledger
        ledger.check()
        assert self.sim.missing() == []
        handed = {p for p, _, _ in ledger.handed}
        for payload, notices in ledger.notices.items():
            final = [n for n in notices if n != "unknown"]
            if payload not in ledger.restarted_before:
                assert len(set(final)) <= 1, f"{payload!r}: {notices}"  # copies may repeat one
            if "delivered" in final:
                assert payload in handed, f"{payload!r} notified delivered, never handed"


Network.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestNetwork = Network.TestCase


class JournaledNetwork(Network):
    """The same network with a journaled router: its batches reach the disk whenever the
    test says, and a restart brings back exactly what was written. Nothing receipted may be
    lost (the ledger no longer excuses what a restart took)."""

    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim(
            NAMES,
            window=8,
            recv_window=4,
            manual=("c",),
            slow=("b", "c"),
            max_attempts=4,
            journaled=True,
            resident_bytes=400,  # two or three messages in memory: the rest wait on disk
        )
        self.sim.settle()  # sessions up from the first step: more steps go to the mail

    @rule(batches=st.integers(1, 3))
    def the_journal_writes(self, batches: int) -> None:
        self.sim.write_journal(batches)

    @rule(sender=names, to=names, write=st.booleans())
    def the_router_crashes_just_after_a_receipt(self, sender: str, to: str, write: bool) -> None:
        self.sim.send(sender, to)
        self.sim.to_router(sender)
        if write:
            self.sim.write_journal()
        self.sim.to_client(sender)
        self.sim.restart_router()


JournaledNetwork.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestJournaledNetwork = JournaledNetwork.TestCase


def test_receipted_mail_survives_restarts_with_the_journal() -> None:
    """Mail for an offline recipient, receipted, then the router restarts twice: the
    recipient gets all of it once; the sender's resends after the restarts are duplicates."""
    sim = Sim(["a"], journaled=True)  # b connects only at the end
    sim.settle()
    for _ in range(5):
        sim.send("a", "b")
    for _ in range(20):
        sim.to_router("a")
        sim.to_client("a")
        sim.advance(0.01)  # past the receipt pacing: what holds them back is the disk
    assert sim.unwritten and not sim.ledger.accepted
    sim.write_journal()
    for _ in range(20):
        sim.to_client("a")
    assert len(sim.ledger.accepted) == 5
    sim.send("a", "b")  # stored and written, but its receipt dies with the router:
    sim.to_router("a")
    sim.advance(0.01)
    sim.write_journal()
    sim.restart_router()  # a sends it again to the new router, which knows it has it
    sim.restart_router()
    assert sum(len(mb.queue) for mb in sim.router.delivery.mailboxes.values()) == 6
    sim.start("b")
    sim.settle()
    sim.ledger.check()
    assert sim.missing() == []
    assert len(sim.got["a", "b"]) == 6
    assert sim.router.stats["accepted"] == 0  # everything came from the disk


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
            up, down = sim.links[sim.identity(name)]
            if drop and (up or down):
                sim.break_link(name, bool(up), 0, router_saw_it=False)
            sim.to_router(name)
            sim.to_client(name)
        sim.advance(0.3)
    sim.settle()
    sim.ledger.check()
    # Each delivered once, or dead after max_attempts deliveries (or their acks) were lost
    # with their connection: the router cannot tell that from a recipient that dies on it.
    assert sim.missing() == []
    handed = [p for p, _, _ in sim.ledger.handed]
    assert len(handed) == len(set(handed))


def _backlog_in(sim: Sim, holder: str, count: int) -> None:
    """``count`` messages from a to ``holder``, taken from the router by its core, not yet
    asked for by its (slow) application."""
    for _ in range(count):
        sim.send("a", holder)
    for _ in range(4 * count):
        sim.to_router("a")
        sim.to_client(holder)
        sim.to_router(holder)
    assert sim.peers[holder].core.received_waiting == count


def test_a_stopped_holder_hands_out_nothing_its_successor_had() -> None:
    """The paused-holder race, exactly: bob holds a backlog, is stopped past its lease, the
    router gives the name and the mail to bob#2, who handles it; bob#1 wakes and asks for its
    next message before it has heard that its connection died. Its lease has run out: it
    asks the router first, and hands over nothing (its application hears NameTakenError)."""
    sim = Sim(["a", "b"], slow=("b",))
    sim.settle()
    _backlog_in(sim, "b", 3)
    old = sim.peers["b"]
    sim.stop_and_replace("b", 3.0)
    assert [(p, a) for p, i, a in sim.ledger.handed if i == sim.identity("b")] == [
        (b"a/101>b#0", 2),
        (b"a/101>b#1", 2),
        (b"a/101>b#2", 2),
    ]
    sim.wake()
    sim.ledger.check()
    assert not [h for h in sim.ledger.handed if h[1] == old.identity]
    sim.settle()
    assert old.core.state == "refused" and old.core.take_message(sim.now) is None


def test_mail_taken_over_from_a_live_holder_is_never_handed_by_it_after_the_newcomer() -> None:
    """A takeover of a live holder with a backlog: the newcomer gets nothing until the old
    holder's lease must have run out (the lock-delay), so whatever the old holder hands out
    before it hears TAKEN_OVER, it hands out first: never a stale copy after the newcomer."""
    sim = Sim(["a", "b"], slow=("b",))
    sim.settle()
    _backlog_in(sim, "b", 3)
    old = sim.peers["b"]
    sim.take_over("b")  # the newcomer gets going at once...
    new = sim.peers["b"]
    assert not [h for h in sim.ledger.handed if h[1] == new.identity]  # ...but gets no mail yet
    sim.retired_apps_take()  # the old holder, within its lease, still hands one out
    sim.advance(1.0)  # past the lock-delay
    sim.settle()
    sim.ledger.check()
    handed_by_old = [p for p, i, _ in sim.ledger.handed if i == old.identity]
    assert len(handed_by_old) <= 1 and old.core.state == "refused"
