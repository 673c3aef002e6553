"""The sidecar's /status document, built from one snapshot of its state (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mysqlsts.core.health import Verdict, replication_lag
from mysqlsts.core.status import Observation
from mysqlsts.sidecar.metrics import MetricsView


@dataclass(frozen=True)
class StatusContext:
    """What /status shows beyond the metrics' view: fixed settings and the donor's counts."""

    pod: str
    live: Verdict
    primary: str
    heartbeat_database: str
    donor: dict[str, Any]
    consistency_interval: float = 0.0  # --consistency-check-interval (the primary's schedule)
    lease: dict[str, Any] | None = None  # the primary lease's state; None without one


def iso(unix_time: float | None) -> str | None:
    if unix_time is None:
        return None
    return datetime.fromtimestamp(unix_time, UTC).isoformat(timespec="milliseconds")


def status_document(view: MetricsView, context: StatusContext) -> dict[str, Any]:
    state, obs = view.state, view.state.observation
    body: dict[str, Any] = {
        "pod": context.pod,
        "role": view.role,
        "server_id": view.server_id,
        "flavor": view.flavor,
        "version": obs.version,
        "up": obs.up,
        "error": obs.error or None,
        "read_only": obs.read_only,
        "observed_at": iso(obs.taken_at),
        "live": {"ok": context.live.ok, "reason": context.live.reason},
        "ready": {"ok": view.ready.ok, "reason": view.ready.reason},
        "setup": {"done": state.setup_done, "message": state.setup_message},
        "gtid": dict(obs.gtid),
        "replication": None,
        "heartbeat": {"database": context.heartbeat_database},
        "clone": {"record": None if view.clone is None else view.clone.summary(),
                  "donor": context.donor},
        # Table names and counts only: chunk boundaries are key values, i.e. data.
        "consistency": None,
    }
    if view.consistency is not None:
        body["consistency"] = view.consistency.as_dict()
        if view.is_primary:
            body["consistency"]["interval_seconds"] = context.consistency_interval
    if context.lease is not None:
        body["lease"] = context.lease
    if view.is_primary:
        body["heartbeat"]["last_write"] = iso(view.heartbeat_written_at)
    else:
        body["heartbeat"]["last_applied"] = iso(obs.heartbeat_ts)
        body["replication"] = _replication(view.now, obs, context.primary)
        body["replication"]["errant_transactions"] = list(view.errant)
    return body


def _replication(now: float, obs: Observation, primary: str) -> dict[str, Any]:
    status = obs.replica
    lag = replication_lag(now, obs.heartbeat_ts)
    body: dict[str, Any] = {
        "configured": obs.replica_configured,
        "primary": primary,
        "lag_seconds": None if lag is None else round(lag, 3),
    }
    if status is not None:
        body.update({
            "source": f"{status.source_host}:{status.source_port}",
            "io_running": status.io_state,
            "sql_running": status.sql_state,
            "last_io_errno": status.last_io_errno,
            "last_io_error": status.last_io_error or None,
            "last_sql_errno": status.last_sql_errno,
            "last_sql_error": status.last_sql_error or None,
            # False while the I/O thread only retries a source it cannot reach; None while
            # the thread is stopped or failing (then nobody knows).
            "source_reachable": True if status.io_running else (
                False if status.source_unreachable else None),
            "seconds_behind_source": status.seconds_behind_source,
            "gtid_mode": status.gtid_mode,
            "retrieved_gtid": status.retrieved_gtid,
            "executed_gtid": status.executed_gtid or None,
            "relay_log_file": status.relay_log_file,
            "relay_log_pos": status.relay_log_pos,
            "relay_source_log_file": status.relay_source_log_file,
            "exec_source_log_pos": status.exec_source_log_pos,
        })
    return body
