"""The `mysqlsts status` table from recorded /status documents (pure)."""

import json

from mysqlsts.status.table import Fetched, PodFacts, build_rows, render_json, render_table

REPLICA = {
    "pod": "mysql-1", "role": "replica", "server_id": 101, "up": True, "error": None,
    "ready": {"ok": False, "reason": "replication stopped: io=No sql=Yes; error 1045: denied"},
    "gtid": {"gtid_current_pos": "0-100-42", "gtid_binlog_pos": "0-100-42"},
    "replication": {"lag_seconds": 1.25, "io_running": "No", "sql_running": "Yes",
                    "last_io_errno": 1045, "last_io_error": "Access denied for user 'repl'",
                    "last_sql_errno": 0, "last_sql_error": None},
    "clone": {"record": {"donor": "mysql-0.mysql:3307", "bytes": 1}, "donor": {}},
}
PRIMARY = {"pod": "mysql-0", "role": "primary", "server_id": 100, "up": True,
           "ready": {"ok": True, "reason": "ready: primary, writable"},
           "gtid": {"gtid_current_pos": "0-100-42"}, "replication": None,
           "clone": {"record": None}}


def pod(name, ready=True, phase="Running", node="n1"):
    return PodFacts(name=name, node=node, phase=phase, ready=ready)


def test_rows_in_ordinal_order_with_the_documents_fields():
    pods = [pod("mysql-10"), pod("mysql-1", ready=False), pod("mysql-0")]
    fetched = {"mysql-0": Fetched(PRIMARY), "mysql-1": Fetched(REPLICA),
               "mysql-10": Fetched(None, "HTTP 503 Service Unavailable: connection refused")}
    rows = build_rows(pods, fetched)
    assert [r.pod for r in rows] == ["mysql-0", "mysql-1", "mysql-10"]
    primary, replica, dead = rows
    assert (primary.role, primary.ready, primary.server_id, primary.gtid) == (
        "primary", "yes", "100", "0-100-42")
    assert (primary.lag, primary.io_sql, primary.last_error, primary.clone) == ("-", "-", "-", "-")
    assert (replica.role, replica.ready, replica.lag, replica.io_sql) == (
        "replica", "no", "1.2s", "No/Yes")
    assert replica.last_error == "io 1045: Access denied for user 'repl'"
    assert replica.clone == "cloned from mysql-0.mysql:3307"
    assert replica.errant == "-"  # the field is not in this document
    assert (dead.role, dead.last_error) == ("unknown", "HTTP 503 Service Unavailable: "
                                            "connection refused")


def test_a_pod_never_fetched_or_not_running_is_unknown_with_its_phase():
    rows = build_rows([pod("mysql-2", ready=False, phase="Pending", node=None)], {})
    assert rows[0].role == "unknown"
    assert rows[0].node == "-"
    assert rows[0].last_error == "pod Pending: not fetched"


def test_errant_transactions_when_reported():
    with_errant = {**REPLICA, "replication": {**REPLICA["replication"],
                                              "errant_transactions": "0-101-3"}}
    none = {**REPLICA, "errant_transactions": ""}
    rows = build_rows([pod("mysql-1"), pod("mysql-2")],
                      {"mysql-1": Fetched(with_errant), "mysql-2": Fetched(none)})
    assert [r.errant for r in rows] == ["0-101-3", "none"]


def test_server_down_shows_the_servers_error_and_a_clone_in_progress():
    down = {**PRIMARY, "up": False, "error": "(2003) Can't connect"}
    cloning = {**REPLICA, "ready": {"ok": False, "reason": "clone in progress"},
               "replication": {}}
    rows = build_rows([pod("mysql-0"), pod("mysql-1")],
                      {"mysql-0": Fetched(down), "mysql-1": Fetched(cloning)})
    assert rows[0].last_error == "(2003) Can't connect"
    assert rows[1].clone == "in progress"
    assert rows[1].last_error == "clone in progress"


def test_table_and_json_rendering():
    fetched = {"mysql-0": Fetched(PRIMARY), "mysql-1": Fetched(None, "x" * 80)}
    rows = build_rows([pod("mysql-0"), pod("mysql-1")], fetched)
    lines = render_table(rows, max_width=20).splitlines()
    assert lines[0].split()[:3] == ["POD", "NODE", "ROLE"]
    assert lines[2].split()[2] == "unknown"
    assert "x" * 19 + "…" in lines[2] and "x" * 20 not in lines[2]
    header = lines[0]
    assert all(line[header.index("ROLE"):].split()[0] in {"ROLE", "primary", "unknown"}
               for line in lines)
    document = json.loads(render_json("db", rows, fetched))
    assert document["pods"][0]["status"] == PRIMARY
    assert document["pods"][1]["status"] is None
    assert document["pods"][1]["last_error"] == "x" * 80  # not cut in JSON
