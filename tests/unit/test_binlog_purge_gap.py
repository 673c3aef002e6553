"""Purging the primary's binary logs past a gap in the archive: only once a base backup stands
at or after it, and then the files before the backup's position and the archived ones after
it, up to the next gap; past an archive that begins late (trimmed by retention), once a backup
is past that; and what the metrics then call blocked."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mysqlsts.core.binlog_index import SegmentRecord, breaks
from mysqlsts.core.binlog_purge import (
    Backlog,
    BinlogFile,
    holdings,
    plan_purge,
    purge_round,
    purge_with_bases,
    uncovered_break,
)
from tests.unit.test_pitr_plan import EPOCH, SERVER, History


def pos(seq: int) -> str:
    return f"0-{SERVER}-{seq}" if seq else ""


# Transactions 1..20; files holding 1..4, 5..9, 10..14, 15..20, and the newest (empty).
FILES = [BinlogFile(f"b.00000{n + 1}", pos(start))
         for n, start in enumerate([0, 4, 9, 14, 20])]


def archive(cuts: list[int], lost: set[int]) -> History:
    return History([EPOCH + n for n in range(20)], cuts, lost)


def test_a_gap_blocks_until_a_base_backup_stands_at_or_after_it() -> None:
    records = archive([5, 10, 15], {1}).records  # 6..10 lost
    assert purge_with_bases(FILES, records, []) == (None, "")
    assert purge_with_bases(FILES, records, [pos(8), pos(9)]) == (None, "")  # before its end
    assert purge_with_bases(FILES, records, [pos(10)]) == ("b.000005", pos(10))
    assert purge_with_bases(FILES, records, [pos(8), pos(13)]) == ("b.000005", pos(13))
    held = holdings(records, pos(10))
    assert held.begins == {0: 1} and held.archived[0].seq == 20
    assert holdings(records, pos(9)).archived == {}  # the gap's domain: held not at all


def test_past_the_gap_the_usual_rule_applies_to_the_archive_after_it() -> None:
    # 6..10 lost, and the archive ends at 17: the files after 17 stay.
    records = archive([5, 10, 15, 17], {1, 4}).records
    assert purge_with_bases(FILES, records, [pos(12)]) == ("b.000004", pos(12))
    # And the successor of a purged file must be old enough, as always.
    ages = {"b.000002": 100.0, "b.000003": 100.0, "b.000004": 10.0}
    assert purge_with_bases(FILES, records, [pos(12)], ages, keep=60) == ("b.000003", pos(12))


def test_a_base_between_two_gaps_lets_the_files_up_to_the_later_one_go() -> None:
    records = archive([5, 10, 15, 18], {1, 3}).records  # 6..10 and 16..18 lost
    # The base holds 1..12, the archive 11..15: the files holding 1..14 go; b.000004 holds
    # 15..20, the later gap among them, and stays with those after it.
    assert purge_with_bases(FILES, records, [pos(12)]) == ("b.000004", pos(12))
    held = holdings(records, pos(12))
    assert held.begins == {0: 1} and held.archived[0].seq == 15
    assert purge_with_bases(FILES, records, [pos(18)]) == ("b.000005", pos(18))
    assert purge_with_bases(FILES, records, [pos(12), pos(18)]) == ("b.000005", pos(18))
    # A base inside the later gap: it holds up to its position, the archive nothing more.
    assert holdings(records, pos(17)).archived[0].seq == 17
    assert purge_with_bases(FILES, records, [pos(17)]) == ("b.000004", pos(17))
    # A base before the first gap's end still lets nothing go.
    assert purge_with_bases(FILES, records, [pos(3), pos(9)]) == (None, "")


def test_an_overlap_after_the_base_ends_what_it_holds() -> None:
    once = archive([10], {1}).records  # 1..10
    twice = archive([7], {0}).records  # 8..20: 8..10 held twice
    records = [*once, *twice]
    assert purge_with_bases(FILES, records, [pos(9)]) == (None, "")  # inside the overlap
    assert holdings(records, pos(10)).archived[0].seq == 20
    # 11..20 held twice as well: the base must stand past that overlap too.
    thrice = [*records, *archive([10], {0}).records]
    assert holdings(thrice, pos(10)).archived[0].seq == 10
    assert holdings(thrice, pos(20)).archived[0].seq == 20
    # A base before the overlap, past an earlier gap: held up to the overlap's start only.
    gapped = [*archive([2, 5, 10], {1}).records, *twice]  # 3..5 lost; 6..10 and 8..20
    assert holdings(gapped, pos(6)).archived[0].seq == 7
    assert purge_with_bases(FILES, gapped, [pos(6)]) == ("b.000002", pos(6))


def test_a_base_past_the_archive_counts_only_up_to_its_newest_transaction() -> None:
    """The archiver resumes from the primary's files after its newest transaction: those
    stay whatever the base holds."""
    records = archive([5, 10, 12], {1, 3}).records  # 6..10 lost; 13..20 not archived yet
    assert holdings(records, pos(19)).archived[0].seq == 12
    assert purge_with_bases(FILES, records, [pos(19)]) == ("b.000003", pos(19))


def test_an_archive_that_begins_late_purges_once_a_base_is_past_its_start() -> None:
    records = archive([5, 10, 15], {0}).records  # begins at 6: trimmed, or started late
    assert purge_with_bases(FILES, records, []) == (None, "")
    assert purge_with_bases(FILES, records, [pos(3)]) == (None, "")  # 4, 5 only in binlogs
    assert purge_with_bases(FILES, records, [pos(5)]) == ("b.000005", pos(5))


def test_a_contiguous_archive_needs_no_base() -> None:
    records = archive([5, 10, 15], set()).records
    assert purge_with_bases(FILES, records, []) == ("b.000005", "")
    assert purge_with_bases(FILES, records, [pos(3)]) == ("b.000005", "")
    held = holdings(records)
    assert held.begins == {0: 1} and held.archived[0].seq == 20


def test_a_base_that_does_not_name_the_domain_does_not_cover_it() -> None:
    records = archive([5, 10, 15], {1}).records
    assert purge_with_bases(FILES, records, ["7-1-99"]) == (None, "")


# Random histories: the archive's segments (each a length and whether it is kept), runs
# archived twice, the binary logs' starts, the bases, the files' ages and `keep`.
HISTORIES = {
    "segments": st.lists(st.tuples(st.integers(1, 4), st.booleans()), min_size=1, max_size=8),
    "again": st.lists(st.tuples(st.integers(1, 24), st.integers(0, 4)), max_size=2),
    "starts": st.sets(st.integers(1, 32), max_size=6),
    "bases": st.lists(st.integers(1, 32), max_size=4),
    "ages": st.lists(st.integers(0, 3), max_size=7), "keep": st.integers(0, 2)}


@settings(max_examples=2000, deadline=None)
# A base between two gaps, with a file starting past the later one; a base past the archive's
# newest transaction, with a file starting between them.
@example(segments=[(5, True), (5, False), (5, True), (3, False), (2, True)], again=[],
         starts={4, 9, 14, 17, 19}, bases=[12], ages=[], keep=0)
@example(segments=[(5, True), (5, True), (5, False)], again=[], starts={12, 14}, bases=[14],
         ages=[], keep=0)
@given(**HISTORIES)
def test_no_purged_transaction_is_in_neither_a_base_nor_the_archive(
        segments: list[tuple[int, bool]], again: list[tuple[int, int]], starts: set[int],
        bases: list[int], ages: list[int], keep: int) -> None:
    """Random histories of several gaps (`segments`: each a length and whether it is kept),
    overlaps (`again`: a run archived a second time) and several bases: every transaction the
    purged files held is in the chosen base or the archive; the archive itself reaches past
    them (the archiver resumes from the files after its newest transaction); the base stands
    at or after the archive's first break; no file younger than `keep` is the successor."""
    records, files, n = random_history(segments, again, starts)
    age = {f.name: float(a) for f, a in zip(files, ages, strict=False)}
    target, base = purge_with_bases(files, records, [pos(b) for b in bases if b <= n], age,
                                    keep)
    if target is None:
        return
    gone = next(f.start for f in files if f.name == target)  # files before it held 1..gone
    assert gone is not None
    upto = int(gone.rsplit("-", 1)[1]) if gone else 0
    at = int(base.rsplit("-", 1)[1]) if base else 0
    held = set(held_seqs(records))
    assert set(range(at + 1, upto + 1)) <= held, (target, base)
    assert upto <= max(held, default=0), (target, base)
    assert age.get(target, 0.0) >= keep, (target, age)
    if base:
        assert covers_first_break(records, at), (target, base)


def random_history(segments: list[tuple[int, bool]], again: list[tuple[int, int]],
                   starts: set[int]) -> tuple[list[SegmentRecord], list[BinlogFile], int]:
    """The archive's records (`segments`: each a length and whether it is kept; `again`: a
    run archived a second time), the binary log files starting at `starts`, and how many
    transactions were written."""
    n = sum(length for length, _ in segments)
    cuts = [sum(length for length, _ in segments[:k]) for k in range(1, len(segments))]
    history = History([EPOCH + s for s in range(n)], cuts,
                      {k for k, (_, kept) in enumerate(segments) if not kept})
    records = list(history.records)
    for first, length in again:
        if first <= n:
            repeat = History([EPOCH + s for s in range(n)], [first - 1, first + length], set())
            records += [r for r in repeat.records if r.domains[0].first_seq == first]
    files = [BinlogFile(f"b.{k:06d}", pos(start))
             for k, start in enumerate([0, *sorted(s for s in starts if s <= n)])]
    return records, files, n


def test_the_round_asks_for_the_bases_only_when_the_archive_alone_is_blocked() -> None:
    contiguous = archive([5, 10, 15], set()).records
    assert not purge_round(FILES, contiguous).needs_bases
    assert not purge_round(FILES, contiguous, {}, keep=60).needs_bases  # only waiting
    assert not purge_round(FILES[:1], contiguous).needs_bases  # one file: it is the newest
    gapped = purge_round(FILES, archive([5, 10, 15], {1}).records)  # 6..10 lost
    assert gapped.needs_bases and gapped.alone is None
    assert purge_round(FILES[:1], archive([5, 10, 15], {1}).records).needs_bases
    late = purge_round(FILES, archive([5, 10, 15], {0}).records)  # begins at 6
    assert late.needs_bases and late.alone is not None and late.alone.reach is None
    assert late.plan([pos(5)]) == plan_purge(FILES, late.records, [pos(5)])
    assert late.plan([pos(5)]).target == "b.000005"


@settings(max_examples=1000, deadline=None)
@given(**HISTORIES)
def test_bases_change_no_plan_of_a_round_that_does_not_ask_for_them(
        segments: list[tuple[int, bool]], again: list[tuple[int, int]], starts: set[int],
        bases: list[int], ages: list[int], keep: int) -> None:
    """What lets the sidecar skip reading the store's backups: when the round does not ask for
    them, the plan with any bases is the plan without (target, figures and all)."""
    records, files, n = random_history(segments, again, starts)
    age = {f.name: float(a) for f, a in zip(files, ages, strict=False)}
    this_round = purge_round(files, records, age, keep)
    if this_round.needs_bases:
        return
    assert this_round.plan([pos(b) for b in bases if b <= n]) == this_round.plan([])


def covers_first_break(records: list[SegmentRecord], at: int) -> bool:
    return all(at >= seq for seq in missing_or_twice(records)[:1])


def held_seqs(records: list[SegmentRecord]) -> list[int]:
    """Every sequence number the records hold, as often as they hold it."""
    return [seq for record in records
            for seq in range(record.domains[0].first_seq, record.domains[0].last_seq + 1)]


def missing_or_twice(records: list[SegmentRecord]) -> list[int]:
    """The sequence numbers the archive lacks between its first and newest, or holds twice,
    in order (the brute-force view of its breaks)."""
    counts: dict[int, int] = {}
    for seq in held_seqs(records):
        counts[seq] = counts.get(seq, 0) + 1
    if not counts:
        return []
    return [s for s in range(min(counts), max(counts) + 1) if counts.get(s, 0) != 1]


SIZED = [BinlogFile(f.name, f.start, 100) for f in FILES]


def test_files_that_only_wait_for_keep_are_neither_blocked_nor_unarchived() -> None:
    """An archive that begins after the oldest binary log, a base backup past its start: the
    files before it may go once old enough, so they only wait."""
    records = archive([5, 10, 15], {0}).records  # begins at 6
    young = {f.name: 0.0 for f in FILES}
    plan = plan_purge(SIZED, records, [pos(5)], young, keep=60)
    assert plan.target is None and plan.uncovered is None
    assert plan.backlog == Backlog(500, 100, "")  # the newest file only
    # Without the base, they wait for a person: the archive lacks their transactions.
    alone = plan_purge(SIZED, records, [], young, keep=60)
    assert alone.backlog.unarchived == 500 and "begins after" in alone.backlog.blocked


def test_a_later_gap_no_base_stands_after_is_what_blocks() -> None:
    records = archive([5, 10, 15, 18], {1, 3}).records  # 6..10 and 16..18 lost
    plan = plan_purge(SIZED, records, [pos(12)])
    assert (plan.target, plan.base) == ("b.000004", pos(12))
    assert plan.uncovered is not None and "seq 16..18 missing" in str(plan.uncovered)
    assert plan.backlog.unarchived == 200 and "seq 16..18 missing" in plan.backlog.blocked
    assert plan_purge(SIZED, records, []).backlog.blocked.count("seq 6..10 missing") == 1
    after_both = plan_purge(SIZED, records, [pos(12), pos(18)])
    assert after_both.uncovered is None and after_both.backlog == Backlog(100, 100, "")


def test_the_first_break_no_base_stands_after() -> None:
    records = archive([5, 10, 15, 18], {1, 3}).records  # 6..10 and 16..18 lost
    first, later = breaks(records)
    assert uncovered_break(records, []) == first
    assert uncovered_break(records, [pos(9)]) == first  # inside it
    assert uncovered_break(records, [pos(10)]) == later
    assert uncovered_break(records, [pos(3), pos(18)]) is None
    assert uncovered_break(archive([5], set()).records, []) is None  # no break
