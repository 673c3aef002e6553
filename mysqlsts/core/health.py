"""Liveness and readiness verdicts: pure functions of one observation and `now`.

Liveness asks "is the sidecar's own loop alive?" and nothing else: the server's health is the
mysql container's own probes, so a long crash recovery (or replication trouble) can never get
the sidecar restarted in a loop. Readiness asks
"should this pod serve reads?" as an ordered list, first failing rule wins (after moco-agent).
"""

from __future__ import annotations

from dataclasses import dataclass

from mysqlsts.core.status import Observation, applied_everything, errant_transactions


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str  # one line, the body of the probe's answer


def replication_lag(now: float, heartbeat_ts: float | None) -> float | None:
    """Seconds since the newest applied heartbeat; never negative (clocks drift a little)."""
    if heartbeat_ts is None:
        return None
    return max(0.0, now - heartbeat_ts)


def liveness(now: float, *, loop_tick_at: float, threshold: float) -> Verdict:
    loop_idle = now - loop_tick_at
    if loop_idle > threshold:
        return Verdict(False, f"the sidecar's loop has not run for {loop_idle:.0f}s")
    return Verdict(True, "alive")


def lag_when_source_lost(before: float | None, observation: Observation) -> float | None:
    """The heartbeat lag at the first observation that saw the source unreachable, kept until it
    is reachable again (a down local server tells nothing either way: keep what was known)."""
    if not observation.up:
        return before
    status = observation.replica
    if status is None or not status.source_unreachable:
        return None
    if before is not None:
        return before
    return replication_lag(observation.taken_at, observation.heartbeat_ts)


@dataclass(frozen=True)
class ReadinessInputs:
    is_primary: bool
    setup_done: bool
    setup_message: str
    max_lag: float
    # An observation older than this is not trusted (the loop is stuck or slow).
    stale_after: float
    # How stale a replica may serve reads while its source is unreachable.
    max_staleness_primary_down: float = 300.0
    # Heartbeat lag when the source was first seen unreachable (None: it is reachable, or the
    # loop has not seen it lost): a replica already lagging then stays unready.
    lag_when_source_lost: float | None = None
    # The isolation fence holds this primary read-only (docs/sidecar.md, "Isolation fence").
    fenced: bool = False
    # Why the primary lease's fence holds the server stopped; "" when it does not
    # (docs/takeover.md, "Writable only under a lease").
    lease_fence: str = ""
    # Why a primary with a lease may not be writable yet (its lease is not held); "" when it
    # may, or there is no lease. Such a primary is read-only and not ready.
    lease_wait: str = ""
    # The replica's source answered read-only (a primary waiting for its lease, or fenced):
    # it writes no heartbeat, so a stale one is no lag (None: not known).
    source_read_only: bool | None = None


def readiness(now: float, observation: Observation, inputs: ReadinessInputs) -> Verdict:
    age = now - observation.taken_at
    if inputs.lease_fence:
        return Verdict(False, f"primary lease fence: {inputs.lease_fence}")
    if inputs.lease_wait:
        return Verdict(False, f"read-only until it holds the lease: {inputs.lease_wait}")
    if inputs.fenced:
        return Verdict(False, "isolation fence: read-only until the API or a peer is "
                              "reachable again")
    if observation.clone_in_progress:
        return Verdict(False, "clone in progress")
    if age > inputs.stale_after:
        return Verdict(False, f"no observation of the server for {age:.0f}s")
    if not observation.up:
        return Verdict(False, f"server unreachable: {observation.error}")
    if inputs.is_primary:
        return _primary(observation, inputs)
    return _replica(now, observation, inputs)


def _primary(observation: Observation, inputs: ReadinessInputs) -> Verdict:
    if observation.read_only:
        return Verdict(False, "primary is read-only")
    if not inputs.setup_done:
        return Verdict(False, f"primary set-up not done: {inputs.setup_message}")
    return Verdict(True, "ready: primary, writable")


def _replica(now: float, observation: Observation, inputs: ReadinessInputs) -> Verdict:
    status = observation.replica
    if status is None or not status.configured:
        why = "" if inputs.setup_done else f" ({inputs.setup_message})"
        return Verdict(False, f"replication not configured{why}")
    errant = errant_transactions(observation)
    if errant:
        shown = ", ".join(errant[:3]) + (", ..." if len(errant) > 3 else "")
        return Verdict(False, f"errant transactions the primary never had: {shown}")
    error = f"; error {status.last_errno}: {status.last_error}" if status.last_errno else ""
    if status.source_unreachable:
        return _source_unreachable(now, observation, inputs)
    if not (status.io_running and status.sql_running):
        return Verdict(
            False, f"replication stopped: io={status.io_state} sql={status.sql_state}{error}"
        )
    if status.last_errno:
        return Verdict(False, f"replication error {status.last_errno}: {status.last_error}")
    lag = replication_lag(now, observation.heartbeat_ts)
    if lag is not None:
        if lag > inputs.max_lag and inputs.source_read_only and applied_everything(observation):
            return _source_read_only(lag, inputs)
        if lag > inputs.max_lag:
            return Verdict(False, f"heartbeat lag {lag:.1f}s > max {inputs.max_lag:g}s")
        return Verdict(True, f"ready: replica, heartbeat lag {lag:.1f}s")
    # No heartbeat row from the primary yet (its sidecar has not written one that reached us):
    # fall back to what the server says, which is NULL, not 0, when it does not know.
    behind = status.seconds_behind_source
    if behind is None:
        return Verdict(False, "lag unknown: no heartbeat yet and seconds behind source is NULL")
    if behind > inputs.max_lag:
        return Verdict(False, f"seconds behind source {behind}s > max {inputs.max_lag:g}s")
    return Verdict(True, f"ready: replica, {behind}s behind source (no heartbeat yet)")


def _source_read_only(lag: float, inputs: ReadinessInputs) -> Verdict:
    """A read-only primary (a new mysql-0 waiting out a dead holder's lease, or fenced) is a
    primary down for writes: nothing newer exists in the set than what this replica applied, so
    it serves reads as a replica of a lost primary does, within the same window."""
    return _within_primary_down_window(
        "source read-only (no heartbeat while it holds no lease)", lag, inputs)


def _source_unreachable(now: float, observation: Observation, inputs: ReadinessInputs) -> Verdict:
    """Reads go on through a primary outage, as stale as the window allows, if this replica
    was current when the source went away and has applied all it received."""
    status = observation.replica
    assert status is not None
    why = "source unreachable"
    if status.last_io_errno:
        why += f" (error {status.last_io_errno}: {status.last_io_error})"
    lag = replication_lag(now, observation.heartbeat_ts)
    if lag is None:
        return Verdict(False, f"{why}; no heartbeat applied yet")
    lost_at = inputs.lag_when_source_lost
    if lost_at is None:
        return Verdict(False, f"{why}; lag when it was lost unknown")
    if lost_at > inputs.max_lag:
        return Verdict(False, f"{why}; this replica was lagging ({lost_at:.0f}s) when it was lost")
    if not applied_everything(observation):
        return Verdict(False, f"{why}; relay log not fully applied")
    return _within_primary_down_window(why, lag, inputs)


def _within_primary_down_window(why: str, lag: float, inputs: ReadinessInputs) -> Verdict:
    """A replica of a primary that is down serves reads until its data is older than the window."""
    window = inputs.max_staleness_primary_down
    if lag > window:
        return Verdict(False, f"{why}; last heartbeat {lag:.0f}s ago > "
                              f"max staleness while the primary is down {window:g}s")
    return Verdict(True, f"ready: replica, {why}; serving reads {lag:.0f}s stale "
                         f"(max {window:g}s)")
