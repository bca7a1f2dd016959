"""The agent's decisions without tmux: what an input line holds, what a program without a
known prompt has as a draft, how waits are told and end, what the journal remembers, how
a batch's answer splits."""

from __future__ import annotations

from pathlib import Path

import pytest

from zmqswarm.agent.gateway import _batch_result, all_of
from zmqswarm.agent.intents import IntentLog
from zmqswarm.agent.outcome import Holds, Outcome
from zmqswarm.agent.panes import parse_probe
from zmqswarm.agent.screen import GONE, MIXED, OURS, Mark, Probe, holds, left_of, plain_draft

ENVELOPE = "# [zs] from alice · ticket alice/1/7 · reply: zs send alice '...'"
TEXT = f"{ENVELOPE}\nprintf '%s\\n' 'step 7' >> /tmp/out"


def probe(rows: list[str], x: int | None = None, row: int | None = None) -> Probe:
    row = len(rows) - 1 if row is None else row
    x = len(rows[row]) if x is None else x
    return Probe("%1", False, False, False, x, row, 0, "", "k", "", None, rows, row)


BASH = Mark.of("zs$ ", TEXT)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        # bash shows the paste after its prompt, the cursor after its last character
        (["zs$ " + ENVELOPE, "printf '%s\\n' 'step 7' >> /tmp/out"], OURS),
        # wrapped by an 80-column terminal: the same, whitespace aside
        (["zs$ " + ENVELOPE[:60], ENVELOPE[60:], "printf '%s\\n' 'step 7' >> /tm", "p/out"], OURS),
        # a key typed just before the paste landed: the envelope no longer follows the prompt
        (["zs$ x" + ENVELOPE, "printf '%s\\n' 'step 7' >> /tmp/out"], MIXED),
        # a key after it
        (["zs$ " + ENVELOPE, "printf '%s\\n' 'step 7' >> /tmp/outx"], MIXED),
        # submitted: the command ran, a fresh prompt
        (["zs$ " + ENVELOPE, "printf '%s\\n' 'step 7' >> /tmp/out", "zs$ "], GONE),
        # cleared with C-u
        (["zs$ "], GONE),
        # a human typed over a cleared line
        (["zs$ git st"], GONE),
    ],
)
def test_the_input_line_holds_our_paste_alone_mixed_or_not_at_all(
    rows: list[str], expected: str
) -> None:
    assert holds(probe(rows), BASH) == expected


def test_a_repl_s_continuation_prompts_do_not_hide_our_paste() -> None:
    text = "# [zs] from alice · ticket alice/1/8\nopen('o', 'a').write('''a\nb''')"
    mark = Mark.of(">>> ", text)
    rows = [
        ">>> # [zs] from alice · ticket alice/1/8",
        "... open('o', 'a').write('''a",
        "... b''')",
    ]
    assert holds(probe(rows), mark) == OURS
    assert holds(probe([">>> x# [zs] from alice · ticket alice/1/8", *rows[1:]]), mark) == MIXED


def test_only_what_is_left_of_the_cursor_counts() -> None:
    mark = Mark.of("READY> ", "hello")
    assert holds(probe(["READY> hello  (grey hint)"], x=12), mark) == OURS
    assert left_of("漢字ab", 3) == "漢"  # wide characters take two columns
    assert left_of("ab", 10) == "ab"


def test_a_draft_is_what_extends_the_line_last_known_empty() -> None:
    assert plain_draft("READY>", probe(["READY> draft by a"])) == "draftbya"
    assert plain_draft("READY>", probe(["READY> "])) == ""
    assert plain_draft("READY>", probe(["GOT x", "working 3"])) == ""  # the program's output
    assert plain_draft("", probe(["abc"])) == "abc"  # no prompt at all: anything typed


def test_a_mark_is_made_of_the_edges_of_the_first_and_last_lines() -> None:
    mark = Mark.of("zs$ ", "first   line\n\n  last line  \n")
    assert mark.fields() == ("zs$", "firstline", "lastline")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_wait_is_told_at_once_then_now_and_then_and_ends_at_its_bound() -> None:
    told: list[str] = []
    clock = Clock()
    h = Holds(told.append, clock, bound=10, every=2)
    h.say("deferred", "not at its prompt")
    assert told == ["deferred: not at its prompt · held 0s of at most 10s"]
    clock.now += 1
    h.say("deferred", "not at its prompt")
    assert len(told) == 1  # the same wait, not due yet
    clock.now += 1.5
    h.say("deferred", "not at its prompt")
    assert told[-1] == "deferred: not at its prompt · held 2s of at most 10s"
    clock.now += 0.1
    h.say("refused_draft", "a draft is typed: 'x'")  # a new outcome: at once
    assert told[-1].startswith("refused_draft: a draft is typed: 'x' · held 3s")
    assert h.over() == ""
    clock.now += 8
    assert h.over() == "held 11s, the bound is 10s: refused_draft: a draft is typed: 'x'"
    h.ready()
    assert [(w, round(s, 1)) for w, s in h.held] == [("deferred", 2.6), ("refused_draft", 8.0)]


def test_a_wait_without_a_bound_never_ends_by_itself() -> None:
    clock = Clock()
    h = Holds(lambda _: None, clock, bound=0)
    h.say("deferred", "busy (its hook said so)")
    clock.now += 1e6
    assert h.over() == ""
    assert h.text() == "deferred: busy (its hook said so) · held 1000000s"


def test_outcomes_that_end_a_wait_are_dead_letters_for_the_router() -> None:
    stalled = Outcome("stalled", enters=0, detail="held 300s, the bound is 300s: dead: no pane")
    assert stalled.note().startswith("expired: stalled: held 300s")  # EXPIRED_NOTE
    assert Outcome("duplicate").note().startswith("duplicate: ")
    note = Outcome("submitted", held=[("deferred", 1.25)], detail="it left the line").note()
    assert note.endswith("enters=1 (it left the line) held=deferred:1.2s")


def test_the_journal_remembers_open_intents_with_their_pane_and_done_tickets(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agent.journal"
    path.write_text("P old/1/1\nI a/1/1 %3\nI a/1/2 %3\nD a/1/1\n")  # a journal of before
    log = IntentLog(str(path), compact_after=4, keep_done=2)
    assert log.open == {"old/1/1": "", "a/1/2": "%3"}
    assert log.was_done("a/1/1") and not log.was_done("a/1/2")
    log.intend("a/1/3", "%4")
    log.done("a/1/2")
    log.done("a/1/3")  # compacts: open intents and the last two done stay
    again = IntentLog(str(path))
    assert again.open == {"old/1/1": ""}
    assert list(again.finished) == ["a/1/2", "a/1/3"]


def test_a_batch_s_answer_splits_into_its_commands() -> None:
    lines = ["one", "\x00", "\x00", "x", "y", "\x00", "zs-t-1:1", "\x00"]
    assert _batch_result(lines, "zs-t-1") == (True, [["one"], [], ["x", "y"]])
    assert _batch_result(["zs-t-2:0", "\x00"], "zs-t-2") == (False, [])
    assert all_of("A", "B", "C") == "#{&&:A,#{&&:B,C}}"


def test_a_probe_parses_and_its_check_names_what_it_saw() -> None:
    info = ["%4\t0\t1\t0\t7\t2\t130\tbusy\tabc\tabc\tzs$\tfirst\tlast"]
    p = parse_probe(info, ["h1", "h2", "s0", "s1", "zs$ ok"], history=2)
    assert p is not None and p.in_mode and p.blocked and p.hook == "busy"
    assert (p.x, p.y, p.history, p.row, p.cursor_line) == (7, 2, 130, 4, "zs$ ok")
    assert p.mark == Mark("zs$", "first", "last")
    assert p.screen == ["s0", "s1", "zs$ ok"]
    assert "#{==:#{cursor_x},7}" in p.unchanged() and "#{==:#{history_size},130}" in p.unchanged()
    assert parse_probe([""], [], 0) is None  # the pane was gone
