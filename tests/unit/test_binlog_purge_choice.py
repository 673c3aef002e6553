"""Which binary logs may go: only files whose every transaction the archive holds."""

from mysqlsts.core.binlog_purge import (
    BEHIND,
    Backlog,
    BinlogFile,
    archive_begins,
    backlog,
    covered,
    not_covered,
    purge_to,
)
from mysqlsts.core.gtid import parse_mariadb


def _archived(text: str) -> dict:  # type: ignore[type-arg]
    return {g.domain: g for g in parse_mariadb(text)}


FILES = [BinlogFile("b.000001", ""), BinlogFile("b.000002", "0-1-10"),
         BinlogFile("b.000003", "0-1-20,7-1-3"), BinlogFile("b.000004", "0-1-30,7-1-3")]
FROM_THE_START = {0: 1, 7: 1}  # an archive that holds every transaction from the first


def test_files_go_up_to_the_first_one_that_starts_past_the_archive() -> None:
    assert purge_to(FILES, {}, {}) is None
    assert purge_to(FILES, _archived("0-1-9"), FROM_THE_START) is None
    assert purge_to(FILES, _archived("0-1-10"), FROM_THE_START) == "b.000002"
    # Domain 7 is not archived: the files after its writes stay.
    assert purge_to(FILES, _archived("0-1-25"), FROM_THE_START) == "b.000002"
    assert purge_to(FILES, _archived("0-1-25,7-1-3"), FROM_THE_START) == "b.000003"
    # The newest file is the server's: never named past, however far the archive goes.
    assert purge_to(FILES, _archived("0-1-99,7-1-99"), FROM_THE_START) == "b.000004"
    assert purge_to(FILES[:1], _archived("0-1-99"), FROM_THE_START) is None


def test_an_archive_that_began_after_the_oldest_file_purges_nothing_before_it() -> None:
    """An archive added to a running set starts at the primary's position then: the older
    files hold transactions only the binary log has, however far the archive reaches."""
    late = archive_begins(["0-1-15", "0-1-40", "7-1-1"])
    assert late == {0: 15, 7: 1}
    assert purge_to(FILES, _archived("0-1-99,7-1-99"), late) is None
    # Once the files that precede the archive are gone by other means, the rest can go.
    rest = [BinlogFile("b.000007", "0-1-14,7-1-3"), BinlogFile("b.000008", "0-1-30,7-1-3")]
    assert purge_to(rest, _archived("0-1-99,7-1-99"), late) == "b.000008"


def test_a_start_the_server_cannot_tell_blocks_the_purge() -> None:
    unknown = [FILES[0], BinlogFile("b.000002", None), FILES[2]]
    assert purge_to(unknown, _archived("0-1-99,7-1-99"), FROM_THE_START) is None
    assert not covered("0-1-10", None, _archived("0-1-99"), {0: 1})


def test_a_domain_missing_from_the_archive_is_not_covered() -> None:
    assert covered("", "", {}, {})
    assert not covered("0-1-5,3-2-1", "", _archived("0-1-5"), {0: 1, 3: 1})
    assert covered("0-1-5,3-2-1", "", _archived("0-2-6,3-2-1"), {0: 1, 3: 1})


def test_a_file_goes_only_once_its_successor_is_old_enough() -> None:
    archived = _archived("0-1-99,7-1-99")
    ages = {"b.000002": 100.0, "b.000003": 50.0, "b.000004": 1.0}
    assert purge_to(FILES, archived, FROM_THE_START, ages, keep=60) == "b.000002"
    assert purge_to(FILES, archived, FROM_THE_START, ages, keep=40) == "b.000003"
    assert purge_to(FILES, archived, FROM_THE_START, {}, keep=40) is None  # unknown ages
    assert purge_to(FILES, archived, FROM_THE_START, ages, keep=0) == "b.000004"


SIZED = [BinlogFile("b.000001", "", 100), BinlogFile("b.000002", "0-1-10", 200),
         BinlogFile("b.000003", "0-1-20,7-1-3", 400), BinlogFile("b.000004", "0-1-30,7-1-3", 800)]


def test_the_backlog_counts_whole_files_from_the_first_unarchived_one() -> None:
    # Nothing archived yet: every file is unarchived, and the purge only waits (not blocked).
    assert backlog(SIZED, {}, {}) == Backlog(1500, 1500, "")
    # Archived to 0-1-15: b.000002 holds 0-1-11..20, not all archived: it and the rest count.
    assert backlog(SIZED, _archived("0-1-15"), FROM_THE_START) == Backlog(1500, 1400, "")
    assert backlog(SIZED, _archived("0-1-25,7-1-3"), FROM_THE_START) == Backlog(1500, 1200, "")
    # Everything archived: the newest file still counts (the server writes it).
    assert backlog(SIZED, _archived("0-1-99,7-1-9"), FROM_THE_START) == Backlog(1500, 800, "")
    assert backlog([], {}, {}) == Backlog(0, 0, "")


def test_the_backlog_says_what_blocks_the_purge_for_good() -> None:
    everything = _archived("0-1-99,7-1-9")
    gap = backlog(SIZED, everything, FROM_THE_START, "a gap in domain 0")
    assert gap == Backlog(1500, 800, "a gap in domain 0")
    unknown = backlog([SIZED[0], BinlogFile("b.000002", None, 200), SIZED[2]], everything,
                      FROM_THE_START)
    assert unknown.unarchived == 700 and "cannot tell" in unknown.blocked
    # An archive that holds domain 0 but never domain 7, or began after the oldest file.
    assert "domain 7" in backlog(SIZED, _archived("0-1-99"), FROM_THE_START).blocked
    late = backlog(SIZED, everything, archive_begins(["0-1-15", "7-1-1"]))
    assert late.unarchived == 1500 and "begins after" in late.blocked
    # Behind is not blocked.
    assert not_covered("0-1-20", "", _archived("0-1-15"), {0: 1}) == BEHIND
