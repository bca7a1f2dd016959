"""The fault tests' checker (tests/checker.py): each count can fail, and a run that kept every
promise passes whatever the interleaving of senders at a recipient."""

from __future__ import annotations

import random

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from ..checker import (
    MsgId,
    Outcome,
    Report,
    Sent,
    check,
    parse_history,
    parse_log,
    payload,
)

OK, UNKNOWN, REFUSED = Outcome.RECEIPTED, Outcome.UNKNOWN, Outcome.REFUSED


def m(sender: str, counter: int, incarnation: str = "1") -> MsgId:
    return MsgId(sender, incarnation, counter)


def history(sender: str, *sends: tuple[str, Outcome], incarnation: str = "1") -> list[Sent]:
    return [Sent(m(sender, i, incarnation), to, outcome) for i, (to, outcome) in enumerate(sends)]


A = history("a", ("x", OK), ("x", OK), ("x", OK), ("y", OK))


# -- hand-made: each count, and how it reads ----------------------------------------------


def test_a_run_that_kept_every_promise_passes() -> None:
    report = check([A], {"x": [m("a", 0), m("a", 1), m("a", 2)], "y": [m("a", 3)]})
    assert report.ok
    assert str(report) == (
        "PASS: lost 0, duplicated 0, reordered 0, unexpected 0; recovered 0, unknown 0;"
        " of 4 attempted (4 receipted, 0 refused), 4 handed over"
    )


def test_a_receipted_message_never_handed_over_is_lost() -> None:
    report = check([A], {"x": [m("a", 0), m("a", 2)], "y": [m("a", 3)]})
    assert not report.ok
    assert [s.id for s in report.lost] == [m("a", 1)]
    only(report, "lost")
    assert str(report).startswith("FAIL: lost 1, duplicated 0, reordered 0, unexpected 0;")
    assert str(report).endswith("; lost: a:1->x")


def test_a_message_handed_over_twice_is_duplicated_not_reordered() -> None:
    report = check([A], {"x": [m("a", 0), m("a", 1), m("a", 0), m("a", 2)], "y": [m("a", 3)]})
    assert report.duplicated == [("x", m("a", 0), 2)]
    only(report, "duplicated")
    assert str(report).endswith("; duplicated: a:0->x x2")


def test_a_pair_out_of_send_order_is_reordered_once_per_message_out_of_place() -> None:
    report = check([A], {"x": [m("a", 2), m("a", 0), m("a", 1)], "y": [m("a", 3)]})
    # a:2 came early: it alone is out of place, though two were overtaken
    assert report.reordered == [("x", m("a", 2))]
    only(report, "reordered")


def test_order_is_per_pair_and_per_incarnation() -> None:
    b1 = history("b", ("x", OK), ("x", OK), incarnation="1")
    b2 = history("b", ("x", OK), ("x", OK), incarnation="2")  # a restart: counters from 0
    x = [m("b", 0, "2"), m("a", 1), m("b", 0, "1"), m("a", 0), m("b", 1, "1"), m("b", 1, "2")]
    report = check([history("a", ("x", OK), ("x", OK)), b1, b2], {"x": x})
    assert report.reordered == [("x", m("a", 1))]
    only(report, "reordered")


def test_a_message_never_sent_refused_or_sent_elsewhere_is_unexpected() -> None:
    sends = history("a", ("x", OK), ("x", REFUSED), ("y", OK))
    report = check([sends], {"x": [m("a", 0), m("a", 1), m("a", 2), m("z", 0)], "y": []})
    assert report.unexpected == [("x", m("a", 1)), ("x", m("a", 2)), ("x", m("z", 0))]
    assert [s.id for s in report.lost] == [m("a", 2)]  # not where it was sent
    assert report.refused == 1


def test_an_unknown_outcome_handed_over_once_is_recovered_and_twice_duplicated() -> None:
    sends = history("a", ("x", UNKNOWN), ("x", UNKNOWN), ("x", UNKNOWN))
    report = check([sends], {"x": [m("a", 0), m("a", 1), m("a", 1)]})
    assert [s.id for s in report.recovered] == [m("a", 0)]
    assert report.duplicated == [("x", m("a", 1), 2)]
    assert report.unknown == 1  # a:2: never seen, and never promised
    assert report.lost == []


def test_the_summary_names_a_few_and_counts_the_rest() -> None:
    many = history("a", *[("x", OK)] * 12)
    line = check([many], {"x": []}).summary(examples=3)
    assert line.endswith("; lost: a:0->x, a:1->x, a:2->x (+9 more)")


def test_a_history_naming_a_message_twice_is_a_harness_bug() -> None:
    with pytest.raises(ValueError, match="a:0 attempted twice"):
        check([A, A], {})


# -- the files ----------------------------------------------------------------------------


def test_a_history_file_reads_outcomes_and_ignores_a_torn_last_line() -> None:
    text = (
        "start a 1f 100\n"
        "send 0 x 101\nok 0 105\n"
        "send 1 y 102\nfail 1 106 too_large: 2 MiB\n"
        "send 2 x 103\ninfo 2 107\n"
        "send 3 x 104\n"  # killed before it knew
        "start a 2e 200\nsend 0 x 201\nok 0 2"  # the next process, killed mid-line
    )
    assert parse_history(text) == [
        Sent(m("a", 0, "1f"), "x", OK, 101, 105),
        Sent(m("a", 1, "1f"), "y", REFUSED, 102, 106),
        Sent(m("a", 2, "1f"), "x", UNKNOWN, 103, 107),
        Sent(m("a", 3, "1f"), "x", UNKNOWN, 104, 0),
        Sent(m("a", 0, "2e"), "x", UNKNOWN, 201, 0),
    ]


def test_a_log_reads_the_identity_in_the_payload() -> None:
    ids = [m("a:b", 7, "1f"), m("c", 0, "2")]  # a name may hold ':'
    text = "".join(f"{i.sender} {payload(i)} 1 {n}\n" for n, i in enumerate(ids)) + "c c:1:2"
    assert parse_log(text) == ids


# -- properties ---------------------------------------------------------------------------

SENDERS, RECIPIENTS = ["a", "b", "c"], ["x", "y"]
sends = st.lists(
    st.tuples(st.sampled_from(RECIPIENTS), st.sampled_from(Outcome), st.booleans()),
    max_size=12,
)


@st.composite
def runs(draw: st.DrawFn) -> tuple[list[list[Sent]], dict[str, list[MsgId]], set[MsgId]]:
    """Histories and the logs of a run that kept every promise: each recipient gets every
    receipted message sent to it, and some of the unknown ones, per pair in send order, the
    pairs interleaved at random. Returns the unknown ones that arrived too."""
    histories = []
    queues: dict[str, dict[str, list[MsgId]]] = {r: {s: [] for s in SENDERS} for r in RECIPIENTS}
    came = set()
    for sender in draw(st.lists(st.sampled_from(SENDERS), unique=True, min_size=1)):
        attempts = []
        for i, (to, outcome, arrives) in enumerate(draw(sends)):
            attempts.append(Sent(m(sender, i), to, outcome))
            if outcome is OK or (outcome is UNKNOWN and arrives):
                queues[to][sender].append(m(sender, i))
                if outcome is UNKNOWN:
                    came.add(m(sender, i))
        histories.append(attempts)
    rng = draw(st.randoms(use_true_random=False))
    logs = {r: interleave(list(q.values()), rng) for r, q in queues.items()}
    return histories, logs, came


def interleave(queues: list[list[MsgId]], rng: random.Random) -> list[MsgId]:
    queues = [list(q) for q in queues if q]
    out = []
    while queues:
        q = rng.choice(queues)
        out.append(q.pop(0))
        if not q:
            queues.remove(q)
    return out


def only(report: Report, *failing: str) -> None:
    """The report fails on the counts named, and on no other."""
    for count in ("lost", "duplicated", "reordered", "unexpected"):
        assert bool(getattr(report, count)) == (count in failing), (count, report)


Run = tuple[list[list[Sent]], dict[str, list[MsgId]], set[MsgId]]
FAST = settings(max_examples=60, deadline=None)


@FAST
@given(runs())
def test_every_interleaving_of_a_good_run_passes(run: Run) -> None:
    histories, logs, came = run
    report = check(histories, logs)
    assert report.ok, report
    assert {s.id for s in report.recovered} == came
    attempted = [s for h in histories for s in h]
    assert report.attempted == len(attempted)
    assert report.receipted + report.refused + report.unknown + len(came) == len(attempted)


@FAST
@given(runs(), st.data())
def test_dropping_a_receipted_hand_over_is_exactly_one_lost(run: Run, data: st.DataObject) -> None:
    histories, logs, _ = run
    outcome = {s.id: s.outcome for h in histories for s in h}
    receipted = [(r, i) for r, log in logs.items() for i, x in enumerate(log) if outcome[x] is OK]
    if not receipted:
        return
    r, i = data.draw(st.sampled_from(receipted))
    gone = logs[r].pop(i)
    report = check(histories, logs)
    assert [s.id for s in report.lost] == [gone]
    only(report, "lost")


@FAST
@given(runs(), st.data())
def test_handing_one_over_again_later_is_exactly_one_duplicated(
    run: Run, data: st.DataObject
) -> None:
    histories, logs, _ = run
    nonempty = [r for r in RECIPIENTS if logs[r]]
    if not nonempty:
        return
    r = data.draw(st.sampled_from(nonempty))
    i = data.draw(st.integers(0, len(logs[r]) - 1))
    again = logs[r][i]
    logs[r].insert(data.draw(st.integers(i + 1, len(logs[r]))), again)
    report = check(histories, logs)
    assert report.duplicated == [(r, again, 2)]
    only(report, "duplicated")
    assert again not in {s.id for s in report.recovered}


@FAST
@given(runs(), st.data())
def test_swapping_two_of_a_pair_is_reordered_and_nothing_else(
    run: Run, data: st.DataObject
) -> None:
    histories, logs, _ = run
    pairs = [
        (r, i, j)
        for r, log in logs.items()
        for i in range(len(log))
        for j in range(i + 1, len(log))
        if log[i].sender == log[j].sender
    ]
    if not pairs:
        return
    r, i, j = data.draw(st.sampled_from(pairs))
    log = logs[r]
    log[i], log[j] = log[j], log[i]
    report = check(histories, logs)
    assert 1 <= len(report.reordered) <= j - i
    only(report, "reordered")


@FAST
@given(runs(), st.data())
def test_a_stranger_anywhere_is_exactly_one_unexpected(run: Run, data: st.DataObject) -> None:
    histories, logs, _ = run
    r = data.draw(st.sampled_from(RECIPIENTS))
    stranger = m(data.draw(st.sampled_from(SENDERS)), 99)
    logs[r].insert(data.draw(st.integers(0, len(logs[r]))), stranger)
    report = check(histories, logs)
    assert report.unexpected == [(r, stranger)]
    only(report, "unexpected")
