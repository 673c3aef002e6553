"""Purging the primary's binary logs past a gap in the archive: only once a base backup stands
at or after it, and then the files before the backup's position and the archived ones after
it; and past an archive that begins late (trimmed by retention), once a backup is past that."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from mysqlsts.core.binlog_purge import BinlogFile, covers_breaks, holdings, purge_with_bases
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


def test_every_break_must_be_behind_the_base() -> None:
    records = archive([5, 10, 15, 18], {1, 3}).records  # 6..10 and 16..18 lost
    assert purge_with_bases(FILES, records, [pos(12)]) == (None, "")
    assert purge_with_bases(FILES, records, [pos(18)]) == ("b.000005", pos(18))


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


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(1, 19), max_size=8), lost=st.sets(st.integers(0, 8)),
       starts=st.sets(st.integers(1, 20), max_size=6),
       bases=st.lists(st.integers(0, 20), max_size=3))
def test_no_purged_transaction_is_in_neither_the_base_nor_the_archive(
        cuts: list[int], lost: set[int], starts: set[int], bases: list[int]) -> None:
    history = archive(cuts, lost)
    files = [BinlogFile(f"b.{n:06d}", pos(start))
             for n, start in enumerate([0, *sorted(starts)])]
    target, base = purge_with_bases(files, history.records, [pos(b) for b in bases if b])
    if target is None:
        return
    gone = next(f.start for f in files if f.name == target)  # files before it held 1..gone
    assert gone is not None
    upto = int(gone.rsplit("-", 1)[1]) if gone else 0
    at = int(base.rsplit("-", 1)[1]) if base else 0
    assert set(range(at + 1, upto + 1)) <= history.archived(), (target, base)


def test_whether_a_base_covers_every_break() -> None:
    records = archive([5, 10, 15, 18], {1, 3}).records  # 6..10 and 16..18 lost
    assert not covers_breaks(records, "")
    assert not covers_breaks(records, pos(12))
    assert covers_breaks(records, pos(18))
    assert covers_breaks(archive([5], set()).records, "")  # no break
