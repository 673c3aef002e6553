"""Whose data a data dir holds: the clone step's record check and the sidecar's reading of a
refused root login, as tables of inputs and the sentence (or none) they give."""

from __future__ import annotations

import pytest

from mysqlsts.core.identity import identify
from mysqlsts.core.set_record import (
    ACCESS_DENIED,
    parse_set_record,
    recorded_elsewhere,
    render_set_record,
    root_refused,
    set_name,
)

THIS = "mysql.mysql"


def test_a_pods_set_is_its_statefulset_under_its_service() -> None:
    assert set_name(identify("mysql-2", "mysql", 100)) == THIS
    assert set_name(identify("db-0", "db-headless", 100)) == "db.db-headless"
    assert parse_set_record(render_set_record(THIS)) == THIS
    assert parse_set_record(" mysql.mysql \n\n") == THIS


@pytest.mark.parametrize(
    ("recorded", "refused"),
    [
        (None, False),  # no record: no evidence before a server runs
        (THIS, False),
        ("other.mysql", True),
        ("mysql.other", True),  # the same StatefulSet name under another Service
        ("", True),  # an emptied record is not this set's either
    ],
)
def test_the_clone_step_refuses_only_another_sets_record(
    recorded: str | None, refused: bool
) -> None:
    sentence = recorded_elsewhere(recorded, THIS)
    assert (sentence is not None) is refused
    if sentence is not None:
        assert sentence.startswith("data dir is not this set's: ")
        assert repr(recorded) in sentence and repr(THIS) in sentence
        assert "left untouched" in sentence and "\n" not in sentence


def test_a_huge_record_is_shortened_in_the_sentence() -> None:
    sentence = recorded_elsewhere("x" * 10_000, THIS)
    assert sentence is not None and len(sentence) < 500


@pytest.mark.parametrize(
    ("errno", "recorded", "starts"),
    [
        (None, None, None),  # a look that failed without a server error (refused connection)
        (2003, None, None),  # can't connect: the server is starting, retried as before
        (1040, "other.mysql", None),  # too many connections: says nothing about the data
        (ACCESS_DENIED, None, "data dir is not this set's: its server refuses"),
        (ACCESS_DENIED, "other.mysql", "data dir is not this set's: set 'other.mysql'"),
        (ACCESS_DENIED, THIS, "data dir was cloned in set 'mysql.mysql' but its server"),
    ],
)
def test_a_refused_root_login_says_whose_data_it_is(
    errno: int | None, recorded: str | None, starts: str | None
) -> None:
    sentence = root_refused(errno, recorded, THIS)
    if starts is None:
        assert sentence is None
    else:
        assert sentence is not None and sentence.startswith(starts), sentence
        assert "left untouched" in sentence and "\n" not in sentence
