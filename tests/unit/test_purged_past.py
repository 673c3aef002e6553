"""core.purged_past: where the archive goes on when the primary's binary logs begin past it."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mysqlsts.core import binlog_event as ev
from mysqlsts.core.binlog_index import position_text
from mysqlsts.core.gtid import MariadbGtid
from mysqlsts.core.purged_past import newest_per_domain, position_map, purged_past


def _pos(text: str) -> dict[int, MariadbGtid]:
    return position_map(text)


def test_a_purge_past_the_archive_goes_on_from_the_oldest_binary_log_with_the_range_named() -> None:
    found = purged_past(_pos("0-100-27"), "0-100-40")
    assert found is not None
    assert position_text(found.start) == "0-100-40"
    assert [str(p) for p in found.purged] == [
        "domain 0 seq 28..40 (after the archived 0-100-27; its oldest binary log begins after "
        "0-100-40)"]
    assert found.unheld == ()


def test_nothing_purged_past_the_archive_is_not_a_purge() -> None:
    # A diverged primary: its binary log begins before the archive's position (the refusal
    # is about a GTID it never had), or at it.
    assert purged_past(_pos("0-100-27"), "0-101-3") is None
    assert purged_past(_pos("0-100-27"), "0-100-27") is None
    assert purged_past(_pos("0-100-27"), "") is None  # the server could not say
    assert purged_past({}, "0-100-40") is None  # an empty archive: nothing of it to lose


def test_a_domain_not_purged_past_streams_from_the_archives_own_position() -> None:
    found = purged_past(_pos("0-100-27,1-100-9,2-100-5"), "0-100-40,1-100-4")
    assert found is not None
    assert position_text(found.start) == "0-100-40,1-100-9,2-100-5"
    assert [p.domain for p in found.purged] == [0]


def test_a_domain_the_archive_holds_none_of_starts_where_the_oldest_binary_log_begins() -> None:
    found = purged_past(_pos("0-100-27"), "0-100-40,3-7-12")
    assert found is not None
    assert position_text(found.start) == "0-100-40,3-7-12"
    assert [str(g) for g in found.unheld] == ["3-7-12"]
    assert [p.domain for p in found.purged] == [0]  # not named a gap: where it began is unknown


def test_a_position_listing_a_domain_twice_counts_its_newest() -> None:
    assert position_text(position_map("0-1-5,0-2-9,0-3-7")) == "0-2-9"


_gtids = st.builds(MariadbGtid, st.integers(0, 3), st.integers(1, 3), st.integers(0, 50))
_positions = st.lists(_gtids, max_size=4).map(
    lambda gs: position_map(",".join(str(g) for g in gs)))


@given(_positions, _positions)
def test_the_archive_goes_on_exactly_past_what_was_purged(
        archived: dict[int, MariadbGtid], oldest: dict[int, MariadbGtid]) -> None:
    found = purged_past(archived, position_text(oldest))
    past = {d for d, g in archived.items() if d in oldest and oldest[d].seq > g.seq}
    if not past:
        assert found is None
        return
    assert found is not None
    # Every domain the archive holds: from its own position unless purged past, and then
    # from the oldest binary log's start, never further.
    for domain, have in archived.items():
        assert found.start[domain] == (oldest[domain] if domain in past else have)
    # The gaps are exactly the purged ranges; nothing else is named, nothing else skipped.
    assert {(p.domain, p.archived.seq + 1, p.oldest.seq) for p in found.purged} == {
        (d, archived[d].seq + 1, oldest[d].seq) for d in past}
    assert set(found.start) == set(archived) | set(oldest)
    assert {g.domain for g in found.unheld} == set(oldest) - set(archived)


def test_a_gtid_list_event_is_read_as_the_binlog_state_where_its_file_begins() -> None:
    body = struct.pack("<I", 3 | 0x10000000)  # three GTIDs, a flag in the top bits
    body += b"".join(struct.pack("<IIQ", *g) for g in ((0, 101, 6), (0, 100, 7), (1, 100, 1)))
    event = ev.parse_event(ev.make_event(ev.GTID_LIST, body, server_id=100), checksum=True)
    gtids = ev.parse_gtid_list(event)
    assert [str(g) for g in gtids] == ["0-101-6", "0-100-7", "1-100-1"]
    assert position_text(newest_per_domain(gtids)) == "0-100-7,1-100-1"
    short = ev.parse_event(ev.make_event(ev.GTID_LIST, body[:-1]), checksum=True)
    with pytest.raises(ev.EventError, match="3 GTIDs in 51 body bytes"):
        ev.parse_gtid_list(short)
    with pytest.raises(ev.EventError, match="not a GTID_LIST event"):
        ev.parse_gtid_list(ev.parse_event(ev.make_event(ev.GTID, body), checksum=True))
