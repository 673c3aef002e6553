"""Liveness and readiness verdicts from observations and `now`, rule by rule."""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_status import MARIADB_ROW

from mysqlsts.core.health import ReadinessInputs, liveness, readiness, replication_lag
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
    (_row(Slave_IO_Running="Connecting", Last_IO_Errno=2003, Last_IO_Error="cannot connect"),
     "replication stopped: io=Connecting sql=Yes; error 2003: cannot connect"),
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

