"""The recovery's cut fed segment by segment (core/pitr.py's `Cutter`, how a recovery writes
its relay log files while it reads the archive, one segment held at a time): over random
transaction streams (two domains, holes, repeats, another server id, random commit seconds)
and random plans, any cutting of the stream into segments chooses the same transactions,
reaches the same position and is refused with the same sentence as the stream fed whole."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.core.binlog_segment import Segment, Transaction
from mysqlsts.core.gtid import MariadbGtid
from mysqlsts.core.pitr import Cutter, Plan, RecoveryRefused, cut
from tests.unit.test_binlog_core import txn
from tests.unit.test_pitr_plan import EPOCH, SERVER, make_segment

Outcome = tuple[str, tuple[MariadbGtid, ...], str]


def stream(steps: list[tuple[int, int, bool, int]]) -> list[Transaction]:
    """Transactions from (domain, sequence step, other server, second) steps: a step of 1 is
    the next sequence number, 0 a repeat, 2 a hole."""
    seqs: dict[int, int] = {}
    made = []
    for domain, step, other, second in steps:
        seqs[domain] = seqs.get(domain, 0) + step
        seq = max(seqs[domain], 1)
        server = SERVER + 1 if other else SERVER
        made.append(Transaction(MariadbGtid(domain, server, seq),
                                b"".join(txn(seq, domain, server, ts=EPOCH + second)),
                                EPOCH + second))
    return made


def split(transactions: list[Transaction], cuts: list[int]) -> list[Segment]:
    bounds = sorted({c for c in cuts if 0 < c < len(transactions)} | {0, len(transactions)})
    return [make_segment(transactions[a:b]) for a, b in zip(bounds, bounds[1:], strict=False)]


def fed(plan: Plan, segments: list[Segment]) -> Outcome:
    """The cutter fed one segment at a time: what it chose, or the refusal."""
    cutter = Cutter(plan)
    chosen: list[Transaction] = []
    try:
        for segment in segments:
            out = cutter.feed(segment)
            assert out.description == segment.description
            chosen.extend(out.transactions)
        position = cutter.finish()
    except RecoveryRefused as refused:
        return "refused", (), str(refused)
    assert cutter.chosen == len(chosen)
    return "ok", tuple(t.gtid for t in chosen), position


steps = st.lists(st.tuples(st.sampled_from([0, 0, 1]), st.sampled_from([1, 1, 1, 1, 0, 2]),
                           st.sampled_from([False] * 7 + [True]), st.integers(0, 6)),
                 min_size=1, max_size=30)


@settings(max_examples=300, deadline=None)
@given(steps, st.lists(st.integers(0, 30), max_size=8), st.integers(0, 3),
       st.integers(0, 3), st.sampled_from(["gtid", "time", "latest"]), st.integers(0, 40),
       st.integers(0, 7))
def test_fed_segment_by_segment_equals_the_whole_stream(
        made: list[tuple[int, int, bool, int]], cuts: list[int], base0: int, base1: int,
        kind: str, stop_at: int, second: int) -> None:
    transactions = stream(made)
    base = ",".join(f"{d}-{SERVER}-{s}" for d, s in ((0, base0), (1, base1)) if s)
    stop_gtid, stop_time = "", None
    if kind == "gtid":
        stop_gtid = str(transactions[stop_at % len(transactions)].gtid)
    elif kind == "time":
        stop_time = datetime.fromtimestamp(EPOCH + second, UTC)
    plan = Plan("b", base, (), stop_gtid, stop_time)
    whole = fed(plan, [make_segment(transactions)])
    assert fed(plan, split(transactions, cuts)) == whole
    assert fed(plan, split(transactions, list(range(len(transactions))))) == whole
    if whole[0] == "ok":
        assert tuple(t.gtid for t in cut(plan, split(transactions, cuts))) == whole[1]


def test_a_hole_is_refused_when_the_segment_showing_it_is_fed() -> None:
    first, _, third = stream([(0, 1, False, 0), (0, 1, False, 0), (0, 1, False, 1)])
    cutter = Cutter(Plan("b", "", (), "", None))
    assert cutter.feed(make_segment([first])).transactions == (first,)
    with pytest.raises(RecoveryRefused, match="jump from sequence number 1 to 0-100-3"):
        cutter.feed(make_segment([third]))


def test_after_the_target_nothing_more_is_chosen_and_the_position_is_the_targets() -> None:
    one, two, three = stream([(0, 1, False, 0)] * 3)
    cutter = Cutter(Plan("b", "", (), str(two.gtid), None))
    assert cutter.feed(make_segment([one, two])).transactions == (one, two)
    assert cutter.feed(make_segment([three])).transactions == ()
    assert cutter.done and cutter.finish() == str(two.gtid)


def test_segments_that_end_before_the_target_are_refused_at_the_finish() -> None:
    one, _ = stream([(0, 1, False, 0)] * 2)
    cutter = Cutter(Plan("b", "", (), f"0-{SERVER}-2", None))
    cutter.feed(make_segment([one]))
    with pytest.raises(RecoveryRefused, match=f"end before 0-{SERVER}-2"):
        cutter.finish()
