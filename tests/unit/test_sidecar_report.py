"""The /status document, built from one snapshot without a server or an HTTP port."""

from __future__ import annotations

from dataclasses import replace

from test_metrics import PRIMARY_VIEW, REPLICA_VIEW, render
from test_status import MARIADB_ROW

from mysqlsts.core.health import Verdict
from mysqlsts.core.status import parse_replica_status
from mysqlsts.sidecar.metrics import MetricsView
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


def _unreachable_view() -> MetricsView:
    row = {**MARIADB_ROW, "Slave_IO_Running": "Connecting", "Last_IO_Errno": 2003,
           "Last_IO_Error": "Can't connect"}
    obs = replace(REPLICA_VIEW.state.observation, replica=parse_replica_status(row))
    return replace(REPLICA_VIEW, state=replace(REPLICA_VIEW.state, observation=obs),
                   errant=("0-101-12",))


def test_replica_document_says_the_source_is_unreachable_and_lists_errant_gtids() -> None:
    assert status_document(REPLICA_VIEW, CONTEXT)["replication"]["source_reachable"] is True
    assert status_document(REPLICA_VIEW, CONTEXT)["replication"]["errant_transactions"] == []
    replication = status_document(_unreachable_view(), CONTEXT)["replication"]
    assert replication["source_reachable"] is False
    assert replication["errant_transactions"] == ["0-101-12"]
    stopped = replace(_unreachable_view().state.observation, replica=parse_replica_status(
        {**MARIADB_ROW, "Slave_IO_Running": "No"}))
    view = replace(REPLICA_VIEW, state=replace(REPLICA_VIEW.state, observation=stopped))
    assert status_document(view, CONTEXT)["replication"]["source_reachable"] is None


def test_metrics_export_reachability_and_the_errant_count() -> None:
    healthy, _, _ = render(REPLICA_VIEW)
    assert healthy["mysqlsts_replication_source_reachable"] == 1
    assert healthy["mysqlsts_replication_errant_transactions"] == 0
    lost, _, _ = render(_unreachable_view())
    assert lost["mysqlsts_replication_source_reachable"] == 0
    assert lost["mysqlsts_replication_errant_transactions"] == 1
    primary, _, _ = render(PRIMARY_VIEW)
    assert "mysqlsts_replication_errant_transactions" not in primary


def test_the_consistency_section_names_diverged_tables_and_chunks_not_boundaries() -> None:
    body = status_document(REPLICA_VIEW, CONTEXT)
    section = body["consistency"]
    assert section["checked_chunks"] == 12 and section["diverged_chunks"] == 1
    assert section["diverged_tables"] == ["app.items"]
    assert section["first_diverged"] == [{"db": "app", "table": "items", "chunk": 3,
                                          "this_cnt": 999, "master_cnt": 1000}]
    assert section["last_pass"] == "2023-11-14T21:13:20.000+00:00"
    assert "interval_seconds" not in section
    primary = status_document(PRIMARY_VIEW, replace(CONTEXT, consistency_interval=86400))
    assert primary["consistency"]["interval_seconds"] == 86400
    assert primary["consistency"]["diverged_chunks"] == 0
    assert status_document(replace(REPLICA_VIEW, consistency=None), CONTEXT)[
        "consistency"] is None
