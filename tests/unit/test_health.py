"""Liveness and readiness verdicts from observations and `now`, rule by rule."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_status import MARIADB_ROW

from mysqlsts.core.health import (
    ReadinessInputs,
    lag_when_source_lost,
    liveness,
    readiness,
    replication_lag,
)
from mysqlsts.core.status import Observation, parse_replica_status

NOW = 1_000_000.0
REPLICA = ReadinessInputs(is_primary=False, setup_done=True, setup_message="running",
                          max_lag=30, stale_after=5)
PRIMARY = replace(REPLICA, is_primary=True)
RUNNING = parse_replica_status(MARIADB_ROW)


def _obs(**kw: object) -> Observation:
    base: dict[str, object] = dict(taken_at=NOW - 0.5, up=True, server_id=101, read_only=True,
                                   replica=RUNNING, heartbeat_ts=NOW - 1.2)
    base.update(kw)
    return Observation(**base)  # type: ignore[arg-type]


def _row(**kw: object) -> Observation:
    return _obs(replica=parse_replica_status({**MARIADB_ROW, **kw}))


def test_healthy_replica_is_ready_with_its_lag() -> None:
    verdict = readiness(NOW, _obs(), REPLICA)
    assert verdict.ok and verdict.reason == "ready: replica, heartbeat lag 1.2s"


@pytest.mark.parametrize("observation,reason", [
    (_obs(clone_in_progress=True), "clone in progress"),
    (_obs(taken_at=NOW - 9), "no observation of the server for 9s"),
    (_obs(up=False, error="(2003) Can't connect"), "server unreachable: (2003) Can't connect"),
    (_obs(replica=None), "replication not configured"),
    (_row(Master_Host=""), "replication not configured"),
    (_row(Slave_SQL_Running="No", Seconds_Behind_Master=None),
     "replication stopped: io=Yes sql=No"),
    (_row(Slave_IO_Running="Connecting", Last_IO_Errno=1045, Last_IO_Error="access denied"),
     "replication stopped: io=Connecting sql=Yes; error 1045: access denied"),
    (_row(Slave_IO_Running="No", Last_IO_Errno=1236, Last_IO_Error="GTID not in binlog"),
     "replication stopped: io=No sql=Yes; error 1236: GTID not in binlog"),
    (_row(Last_SQL_Errno=1032, Last_SQL_Error="row not found"),
     "replication error 1032: row not found"),
    (_obs(heartbeat_ts=NOW - 31), "heartbeat lag 31.0s > max 30s"),
    (_obs(heartbeat_ts=None, replica=parse_replica_status(
        {**MARIADB_ROW, "Seconds_Behind_Master": None})),
     "lag unknown: no heartbeat yet and seconds behind source is NULL"),
    (_obs(heartbeat_ts=None, replica=parse_replica_status(
        {**MARIADB_ROW, "Seconds_Behind_Master": 45})), "seconds behind source 45s > max 30s"),
])
def test_replica_not_ready(observation: Observation, reason: str) -> None:
    verdict = readiness(NOW, observation, REPLICA)
    assert not verdict.ok
    assert verdict.reason == reason


def test_order_clone_before_everything() -> None:
    verdict = readiness(NOW, _obs(up=False, clone_in_progress=True, taken_at=0), REPLICA)
    assert verdict.reason == "clone in progress"


def test_heartbeat_lag_wins_over_a_lying_seconds_behind() -> None:
    # The silently dead link: the server says 0 behind, the heartbeat says 40 s.
    verdict = readiness(NOW, _obs(heartbeat_ts=NOW - 40), REPLICA)
    assert not verdict.ok and "heartbeat lag 40.0s" in verdict.reason


def test_no_heartbeat_falls_back_to_seconds_behind_source() -> None:
    verdict = readiness(NOW, _obs(heartbeat_ts=None), REPLICA)
    assert verdict.ok and "0s behind source (no heartbeat yet)" in verdict.reason


def test_failed_set_up_is_the_reason_while_unconfigured() -> None:
    inputs = replace(REPLICA, setup_done=False, setup_message="set-up failed: (1045) denied")
    verdict = readiness(NOW, _obs(replica=None), inputs)
    assert verdict.reason == "replication not configured (set-up failed: (1045) denied)"


def test_primary_rules() -> None:
    assert readiness(NOW, _obs(read_only=False, replica=None), PRIMARY).reason == (
        "ready: primary, writable")
    assert readiness(NOW, _obs(read_only=True), PRIMARY).reason == "primary is read-only"
    not_set_up = replace(PRIMARY, setup_done=False, setup_message="waiting")
    verdict = readiness(NOW, _obs(read_only=False), not_set_up)
    assert not verdict.ok and verdict.reason == "primary set-up not done: waiting"
    # A primary is never judged by replication state.
    broken = _row(Last_SQL_Errno=1062, Slave_SQL_Running="No")
    assert readiness(NOW, replace(broken, read_only=False), PRIMARY).ok


def test_lag_is_never_negative() -> None:
    assert replication_lag(NOW, NOW + 0.3) == 0.0
    assert replication_lag(NOW, None) is None
    assert replication_lag(NOW, NOW - 2.5) == 2.5


def test_liveness_ignores_a_silent_server() -> None:
    # A crash recovery longer than the threshold is the mysql container's startup probe's
    # business: the sidecar's loop runs, so the sidecar is alive.
    assert liveness(NOW, loop_tick_at=NOW - 1, threshold=30.0).ok


def test_liveness_fails_when_the_loop_stalls() -> None:
    verdict = liveness(NOW, loop_tick_at=NOW - 45, threshold=30)
    assert not verdict.ok and "loop has not run for 45s" in verdict.reason



# What MariaDB 10.11 shows once its source has gone: the I/O thread retries, the SQL thread
# has applied everything the I/O thread read (Gtid_IO_Pos == gtid_slave_pos).
REFUSED = ("error reconnecting to master 'repl@127.0.0.1:21610' - retry-time: 1  "
           "maximum-retries: 100000  message: Can't connect to server on '127.0.0.1' (111)")
UNREACHABLE = {**MARIADB_ROW, "Slave_IO_Running": "Connecting", "Last_IO_Errno": 2003,
               "Last_IO_Error": REFUSED, "Seconds_Behind_Master": None,
               "Slave_IO_State": "Reconnecting after a failed master event read"}
CAUGHT_UP = {"gtid_slave_pos": "0-100-11", "gtid_current_pos": "0-100-11"}
OUTAGE = replace(REPLICA, max_staleness_primary_down=40, lag_when_source_lost=1.5)


def _unreachable(heartbeat_age: float, **row: object) -> Observation:
    return _obs(replica=parse_replica_status({**UNREACHABLE, **row}), gtid=CAUGHT_UP,
                heartbeat_ts=NOW - heartbeat_age)


def test_a_current_replica_serves_reads_while_its_source_is_unreachable() -> None:
    verdict = readiness(NOW, _unreachable(35), OUTAGE)
    assert verdict.ok, verdict.reason
    assert verdict.reason == ("ready: replica, source unreachable (error 2003: " + REFUSED +
                              "); serving reads 35s stale (max 40s)")


@pytest.mark.parametrize("errno", [2003, 2005, 2013, 0])
def test_connection_errors_are_an_unreachable_source(errno: int) -> None:
    assert readiness(NOW, _unreachable(3, Last_IO_Errno=errno), OUTAGE).ok


def test_past_the_window_it_turns_unready_saying_why() -> None:
    verdict = readiness(NOW, _unreachable(41), OUTAGE)
    assert not verdict.ok
    assert verdict.reason.endswith(
        "; last heartbeat 41s ago > max staleness while the primary is down 40s")
    assert verdict.reason.startswith("source unreachable (error 2003")


def test_a_replica_lagging_when_the_source_went_away_stays_unready() -> None:
    verdict = readiness(NOW, _unreachable(3), replace(OUTAGE, lag_when_source_lost=31))
    assert not verdict.ok and "was lagging (31s) when it was lost" in verdict.reason
    unknown = readiness(NOW, _unreachable(3), replace(OUTAGE, lag_when_source_lost=None))
    assert not unknown.ok and "lag when it was lost unknown" in unknown.reason


def test_a_read_only_source_is_a_primary_down_for_the_heartbeat() -> None:
    """A new mysql-0 waiting out a dead holder's lease answers, read-only, and writes no
    heartbeat: a caught-up replica serves within the primary-down window, not max lag."""
    waiting = replace(REPLICA, max_staleness_primary_down=40, source_read_only=True)
    current = _obs(gtid=CAUGHT_UP, heartbeat_ts=NOW - 35)
    verdict = readiness(NOW, current, waiting)
    assert verdict.ok and verdict.reason == (
        "ready: replica, source read-only (no heartbeat while it holds no lease); serving "
        "reads 35s stale (max 40s)")
    past = readiness(NOW, _obs(gtid=CAUGHT_UP, heartbeat_ts=NOW - 41), waiting)
    assert not past.ok and past.reason.endswith(
        "last heartbeat 41s ago > max staleness while the primary is down 40s")
    # A writable source (or one not asked), or relay log left to apply: the lag is lag.
    for inputs, observation in (
            (replace(waiting, source_read_only=False), current),
            (replace(waiting, source_read_only=None), current),
            (waiting, _obs(replica=parse_replica_status({**MARIADB_ROW,
                                                         "Gtid_IO_Pos": "0-100-15"}),
                           gtid=CAUGHT_UP, heartbeat_ts=NOW - 35))):
        verdict = readiness(NOW, observation, inputs)
        assert not verdict.ok and verdict.reason == "heartbeat lag 35.0s > max 30s"


def test_relay_log_not_applied_is_unready() -> None:
    behind = _obs(replica=parse_replica_status({**UNREACHABLE, "Gtid_IO_Pos": "0-100-15"}),
                  gtid=CAUGHT_UP, heartbeat_ts=NOW - 3)
    verdict = readiness(NOW, behind, OUTAGE)
    assert not verdict.ok and verdict.reason.endswith("relay log not fully applied")


def test_file_position_replicas_compare_read_and_executed_positions() -> None:
    row = {**UNREACHABLE, "Using_Gtid": "No"}
    assert readiness(NOW, _unreachable(3, **row), OUTAGE).ok
    behind = {**row, "Read_Master_Log_Pos": 3000}
    assert not readiness(NOW, _unreachable(3, **behind), OUTAGE).ok


def test_no_heartbeat_while_unreachable_is_unready() -> None:
    obs = replace(_unreachable(3), heartbeat_ts=None)
    assert readiness(NOW, obs, OUTAGE).reason.endswith("no heartbeat applied yet")


def test_lag_when_source_lost_is_kept_until_it_is_back() -> None:
    lost = _unreachable(2.5)
    first = lag_when_source_lost(None, lost)
    assert first == pytest.approx(2.0)  # taken 0.5 s before NOW
    assert lag_when_source_lost(first, _unreachable(20)) == first
    assert lag_when_source_lost(first, _obs(up=False)) == first
    assert lag_when_source_lost(first, _obs()) is None


ERRANT = {"gtid_binlog_state": "0-100-11,0-101-12", **CAUGHT_UP}


def test_errant_transactions_make_a_replica_unready() -> None:
    obs = _obs(flavor="mariadb", gtid=ERRANT, heartbeat_server_id=100, source_gtid="0-100-11")
    verdict = readiness(NOW, obs, REPLICA)
    assert not verdict.ok
    assert verdict.reason == "errant transactions the primary never had: 0-101-12"
    healthy = replace(obs, gtid={**ERRANT, "gtid_binlog_state": "0-100-11"})
    assert readiness(NOW, healthy, REPLICA).ok


def test_the_isolation_fence_comes_first_on_a_primary() -> None:
    fenced = replace(PRIMARY, fenced=True)
    verdict = readiness(NOW, _obs(read_only=True, clone_in_progress=True, replica=None), fenced)
    assert not verdict.ok and verdict.reason == (
        "isolation fence: read-only until the API or a peer is reachable again")
    assert readiness(NOW, _obs(read_only=False, replica=None), PRIMARY).ok


def test_the_lease_fence_comes_first_and_says_why() -> None:
    fenced = replace(PRIMARY, fenced=True, lease_fence="held by intruder")
    verdict = readiness(NOW, _obs(up=False, replica=None), fenced)
    assert not verdict.ok and verdict.reason == "primary lease fence: held by intruder"


def test_a_primary_without_its_lease_is_read_only_and_says_so() -> None:
    waiting = replace(PRIMARY, fenced=True, lease_wait="the primary lease is not held: held by "
                      "mysql-0/old, unchanged for 3.0s < 15s")
    verdict = readiness(NOW, _obs(read_only=True, replica=None), waiting)
    assert not verdict.ok and verdict.reason == (
        "read-only until it holds the lease: the primary lease is not held: held by "
        "mysql-0/old, unchanged for 3.0s < 15s")
    # the lease's own fence says more, and comes first
    fenced = replace(waiting, lease_fence="server stopped")
    assert readiness(NOW, _obs(up=False, replica=None), fenced).reason == (
        "primary lease fence: server stopped")
