"""Which binary logs may go: only files whose every transaction the archive holds."""

from mysqlsts.core.binlog_purge import BinlogFile, covered, purge_to
from mysqlsts.core.gtid import parse_mariadb


def _archived(text: str) -> dict:  # type: ignore[type-arg]
    return {g.domain: g for g in parse_mariadb(text)}


FILES = [BinlogFile("b.000001", ""), BinlogFile("b.000002", "0-1-10"),
         BinlogFile("b.000003", "0-1-20,7-1-3"), BinlogFile("b.000004", "0-1-30,7-1-3")]


def test_files_go_up_to_the_first_one_that_starts_past_the_archive() -> None:
    assert purge_to(FILES, {}) is None
    assert purge_to(FILES, _archived("0-1-9")) is None
    assert purge_to(FILES, _archived("0-1-10")) == "b.000002"
    # Domain 7 is not archived: the files after its writes stay.
    assert purge_to(FILES, _archived("0-1-25")) == "b.000002"
    assert purge_to(FILES, _archived("0-1-25,7-1-3")) == "b.000003"
    # The newest file is the server's: never named past, however far the archive goes.
    assert purge_to(FILES, _archived("0-1-99,7-1-99")) == "b.000004"
    assert purge_to(FILES[:1], _archived("0-1-99")) is None


def test_a_domain_missing_from_the_archive_is_not_covered() -> None:
    assert covered("", {})
    assert not covered("0-1-5,3-2-1", _archived("0-1-5"))
    assert covered("0-1-5,3-2-1", _archived("0-2-6,3-2-1"))


def test_a_file_goes_only_once_its_successor_is_old_enough() -> None:
    archived = _archived("0-1-99,7-1-99")
    ages = {"b.000002": 100.0, "b.000003": 50.0, "b.000004": 1.0}
    assert purge_to(FILES, archived, ages, keep=60) == "b.000002"
    assert purge_to(FILES, archived, ages, keep=40) == "b.000003"
    assert purge_to(FILES, archived, {}, keep=40) is None  # unknown ages: nothing goes
    assert purge_to(FILES, archived, ages, keep=0) == "b.000004"
