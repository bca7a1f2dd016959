"""When the router probes every session: after a drop at once and once more; after it made
its socket anew, only once peers had their second to reconnect."""

from __future__ import annotations

from zmqswarm.router.sweeps import GRACE, REPROBE, Sweeps


def test_a_drop_sweeps_now_and_once_more() -> None:
    sweeps = Sweeps()
    assert not sweeps.due(0.0) and sweeps.next_at() == float("inf")
    sweeps.dropped(1.0)
    assert sweeps.due(1.0) and not sweeps.due(1.0)  # each sweep is answered once
    assert sweeps.next_at() == 1.0 + REPROBE and not sweeps.due(1.05)
    assert sweeps.due(1.0 + REPROBE) and sweeps.next_at() == float("inf")
    assert sweeps.may_end(1.0)


def test_after_a_renewal_nobody_is_taken_for_gone_until_the_grace_ends() -> None:
    sweeps = Sweeps()
    sweeps.renewed(10.0)
    assert not sweeps.may_end(10.5) and not sweeps.due(10.5)
    sweeps.dropped(10.2)  # the revoked key's refused reconnect, say: it waits too
    assert sweeps.next_at() == 10.0 + GRACE and not sweeps.due(10.9)
    assert sweeps.due(10.0 + GRACE) and sweeps.may_end(10.0 + GRACE)
    assert sweeps.due(10.0 + GRACE + REPROBE)
