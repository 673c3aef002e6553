"""The primary lease's decisions, clocks injected: claim (renew, acquire, take only after the
record stayed unchanged for its duration on OUR clock), and guard (writable only inside the
renew deadline of the last renew's start; a restarted sidecar inherits no window)."""

from __future__ import annotations

import pytest

from mysqlsts.core.lease import (
    Claim,
    GuardAction,
    LeaseRecord,
    LeaseTimings,
    Seen,
    claim,
    guard,
    may_write,
    observe,
    read_only_statements,
    released,
)

NOW = 5_000.0  # monotonic
WALL = 1.7e9
OURS = LeaseRecord("mysql-0", WALL - 3, 15.0, 4)
THEIRS = LeaseRecord("intruder", WALL + 3600, 15.0, 4)  # a clock an hour ahead: never read
FREE = LeaseRecord("", WALL, 15.0, 7)


@pytest.mark.parametrize("record,since,expected,transitions", [
    (OURS, NOW - 100, Claim.RENEW, 4),  # ours: renew, however old
    (None, NOW, Claim.ACQUIRE, 0),  # no record yet
    (FREE, NOW, Claim.ACQUIRE, 8),  # released
    (THEIRS, NOW - 14.9, Claim.WAIT, None),  # live: its renew time (far ahead) is not read
    (THEIRS, NOW - 15.0, Claim.TAKE, 5),  # unchanged for its whole duration here
    (LeaseRecord("intruder", 0.0, 15.0, 1), NOW - 1, Claim.WAIT, None),  # stale stamp, fresh sight
    # A holder whose sidecar may be dead writes until its self-fence (its watchdog's stop),
    # longer than the duration: wait that out too.
    (LeaseRecord("intruder", WALL, 15.0, 4, 23.5), NOW - 23.4, Claim.WAIT, None),
    (LeaseRecord("intruder", WALL, 15.0, 4, 23.5), NOW - 23.5, Claim.TAKE, 5),
])
def test_claim(record: LeaseRecord | None, since: float, expected: Claim,
               transitions: int | None) -> None:
    decision = claim(Seen(record, "v1", since), "mysql-0", NOW, WALL, 15.0)
    assert decision.claim is expected
    if transitions is None:
        assert decision.record is None
    else:
        assert decision.record == LeaseRecord("mysql-0", WALL, 15.0, transitions)


def test_observe_keeps_the_first_sighting_of_a_version_and_restarts_on_a_change() -> None:
    first = observe(None, THEIRS, "v1", NOW)
    assert observe(first, THEIRS, "v1", NOW + 10) is first
    changed = observe(first, THEIRS, "v2", NOW + 10)
    assert changed.since == NOW + 10
    # a holder that keeps renewing is never taken, however long we watch
    seen = first
    for step in range(1, 20):
        seen = observe(seen, THEIRS, f"v{step + 1}", NOW + step * 2)
        assert claim(seen, "mysql-0", NOW + step * 2, WALL, 15.0).claim is Claim.WAIT


@pytest.mark.parametrize("now,renew_started,ok", [
    (NOW, None, False),  # never renewed since start: a restart inherits no window
    (NOW, NOW, True),
    (NOW + 9.99, NOW, True),
    (NOW + 10.0, NOW, False),  # the deadline itself is fenced
    (NOW + 100, NOW, False),
])
def test_may_write(now: float, renew_started: float | None, ok: bool) -> None:
    assert may_write(now, renew_started, 10.0) is ok


@pytest.mark.parametrize("now,renew_started,fenced,writable,lifted,read_only,action", [
    (NOW, NOW, False, False, False, True, GuardAction.WRITABLE),  # just acquired: lift it
    (NOW, NOW, False, False, True, True, GuardAction.WRITABLE),  # a lift that failed: again
    (NOW, NOW, False, True, True, False, GuardAction.NONE),
    (NOW, NOW, True, True, True, None, GuardAction.WRITABLE),  # a persisted fence: held again
    (NOW + 10, NOW, False, True, True, False, GuardAction.FENCE),  # past the deadline
    (NOW + 10, NOW, False, False, True, None, GuardAction.FENCE),  # a lift we never heard of
    (NOW + 10, NOW, True, False, False, True, GuardAction.FENCE),  # fenced stays fenced
    # Never held since start, server read-only (as every server starts) or not listening:
    # wait, so a new pod contends for a dead holder's lease without being stopped.
    (NOW, None, False, False, False, True, GuardAction.NONE),
    # It listens but does not say (too many connections, a slow answer): it may be writable,
    # e.g. lifted by this sidecar's run before a crash: stop it.
    (NOW, None, False, False, False, None, GuardAction.FENCE),
    (NOW, None, False, False, False, False, GuardAction.FENCE),  # writable without the lease
    (NOW, None, True, False, False, True, GuardAction.FENCE),  # restarted while fenced
])
def test_guard(now: float, renew_started: float | None, fenced: bool, writable: bool,
               lifted: bool, read_only: bool | None, action: GuardAction) -> None:
    assert guard(now, renew_started=renew_started, renew_deadline=10.0, fenced=fenced,
                 writable=writable, lifted=lifted, read_only=read_only)[0] is action


def test_released_and_read_only_statements() -> None:
    assert released(OURS, "mysql-0", WALL) == LeaseRecord("", WALL, 15.0, 4)
    assert released(THEIRS, "mysql-0", WALL) is None  # not ours to give
    assert released(None, "mysql-0", WALL) is None
    assert read_only_statements(True, is_mysql=False) == ["SET GLOBAL read_only = ON"]
    # MySQL: super_read_only implies read_only: on last, off first
    assert read_only_statements(True, is_mysql=True)[-1] == "SET GLOBAL super_read_only = ON"
    assert read_only_statements(False, is_mysql=True) == [
        "SET GLOBAL super_read_only = OFF", "SET GLOBAL read_only = OFF"]


@pytest.mark.parametrize("timings,problems", [
    (LeaseTimings(15, 10, 2), 0),
    (LeaseTimings(15, 15, 2), 1),  # the deadline must end before anyone may take the lease
    (LeaseTimings(15, 10, 10), 1),
    (LeaseTimings(5, 10, 12), 2),
])
def test_timings(timings: LeaseTimings, problems: int) -> None:
    assert len(timings.problems()) == problems


def test_record_round_trip_and_garbage() -> None:
    assert LeaseRecord.from_dict(OURS.as_dict()) == OURS
    with pytest.raises(ValueError):
        LeaseRecord.from_dict({"holder": "x"})
    with pytest.raises(ValueError):
        LeaseRecord.from_dict({"holder": "x", "renewed_at": "soon", "duration": 1,
                               "transitions": 0})


@pytest.mark.parametrize("record", [OURS, None, FREE])
def test_claim_writes_the_self_fence_time_in_every_record(record: LeaseRecord | None) -> None:
    decision = claim(Seen(record, "v1", NOW), "mysql-0", NOW, WALL, 15.0, self_fence=13.0)
    assert decision.record is not None and decision.record.self_fence == 13.0


def test_a_record_round_trips_and_an_older_one_without_the_self_fence_reads_as_zero() -> None:
    record = LeaseRecord("mysql-0", WALL, 15.0, 4, self_fence=13.0)
    assert LeaseRecord.from_dict(record.as_dict()) == record
    old = {"holder": "mysql-0", "renewed_at": WALL, "duration": 15.0, "transitions": 4}
    assert LeaseRecord.from_dict(old) == LeaseRecord("mysql-0", WALL, 15.0, 4, 0.0)
    with pytest.raises(ValueError):
        LeaseRecord.from_dict({**old, "self_fence": None})
