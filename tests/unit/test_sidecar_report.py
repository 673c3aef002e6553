"""The /status document, built from one snapshot without a server or an HTTP port."""

from __future__ import annotations

from test_metrics import PRIMARY_VIEW, REPLICA_VIEW

from mysqlsts.core.health import Verdict
from mysqlsts.sidecar.report import StatusContext, status_document

CONTEXT = StatusContext(pod="mysql-1", live=Verdict(True, "loop ticking"),
                        primary="mysql-0.mysql:3306", heartbeat_database="mysqlsts",
                        donor={"port": 3307, "served": 0})


def test_replica_document_reports_replication_and_lag() -> None:
    body = status_document(REPLICA_VIEW, CONTEXT)
    assert (body["pod"], body["role"], body["server_id"], body["flavor"]) == (
        "mysql-1", "replica", 101, "mariadb")
    assert body["live"] == {"ok": True, "reason": "loop ticking"}
    assert body["ready"] == {"ok": True, "reason": "ready"}
    replication = body["replication"]
    assert replication["primary"] == "mysql-0.mysql:3306"
    assert replication["lag_seconds"] == 2.5
    assert replication["io_running"] == "Yes"
    assert body["heartbeat"]["last_applied"].startswith("2023-11-14T22:13:17.5")
    assert body["clone"]["record"]["donor"] == "mysql-0.mysql:3307"
    assert body["clone"]["donor"] == {"port": 3307, "served": 0}


def test_primary_document_reports_its_heartbeat_writes_not_replication() -> None:
    body = status_document(PRIMARY_VIEW, CONTEXT)
    assert body["replication"] is None
    assert body["heartbeat"] == {"database": "mysqlsts",
                                 "last_write": "2023-11-14T22:13:19.600+00:00"}
    assert body["observed_at"].startswith("2023-11-14T22:13:20")
    assert body["read_only"] is False
