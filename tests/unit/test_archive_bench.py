"""bench/archive_bench.py's arithmetic: each acknowledged commit's archive lag is the first
observation of the index covering its GTID minus its acknowledgement."""

from __future__ import annotations

import pytest

from bench.archive_bench import archive_lags, seq_of


def test_the_lag_is_the_first_observation_covering_the_commit():
    acks = [(5, 10.0), (6, 10.1), (7, 10.2)]
    seen = [(9.0, 4), (10.5, 6), (11.4, 9)]
    lags, missing = archive_lags(acks, seen)
    assert lags == pytest.approx([0.5, 0.4, 1.2])
    assert missing == 0


def test_a_commit_archived_before_its_ack_has_no_lag_and_one_never_covered_is_counted():
    acks = [(3, 10.0), (4, 10.1), (8, 10.2)]
    seen = [(9.9, 3), (10.0, 5)]
    lags, missing = archive_lags(acks, seen)
    assert lags == pytest.approx([0.0, 0.0])
    assert missing == 1
    assert archive_lags(acks, []) == ([], 3)


def test_an_observation_going_back_does_not_uncover_a_commit():
    lags, missing = archive_lags([(6, 1.0)], [(1.5, 6), (1.6, 2), (2.0, 7)])
    assert (lags, missing) == ([0.5], 0)


def test_the_sequence_number_is_read_from_the_domain_asked():
    assert seq_of("0-100-42") == 42
    assert seq_of("1-7-3,0-100-9") == 9
    assert seq_of("1-7-3") == 0
    assert seq_of("") == 0
