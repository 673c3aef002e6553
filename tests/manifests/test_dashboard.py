"""The Grafana dashboard: parses, has its variables, every query is valid PromQL (promtool) and
uses only metrics of the contract in docs/metrics.md, and together they show all of them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_support import (
    DASHBOARD,
    contract_metrics,
    dashboard_queries,
    label_values_metric,
    promql_metric_names,
    variable_queries,
)

pytestmark = pytest.mark.manifests

# What Grafana would substitute, for checking the expressions with promtool.
SUBSTITUTES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "1h",
    "$namespace": "db",
    "$statefulset": "mysql",
    "$pod": ".*",
}


def load() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def substitute(expr: str) -> str:
    for name in sorted(SUBSTITUTES, key=len, reverse=True):
        expr = expr.replace(name, SUBSTITUTES[name])
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def test_metric_name_parser() -> None:
    """The parser the checks below rely on, on the shapes of query we write."""
    assert promql_metric_names('mysqlsts_up{pod=~"$pod"}') == {"mysqlsts_up"}
    assert promql_metric_names(
        'sum by (pod, result) (increase(mysqlsts_clone_streams_served_total{a="b"}[5m]))'
    ) == {"mysqlsts_clone_streams_served_total"}
    assert promql_metric_names("time() - mysqlsts_heartbeat_last_write_timestamp_seconds > 60") == {
        "mysqlsts_heartbeat_last_write_timestamp_seconds"
    }
    assert promql_metric_names("a_total * b unless on (namespace, pod) c == 0") == {
        "a_total",
        "b",
        "c",
    }


def test_dashboard_structure() -> None:
    dashboard = load()
    assert dashboard["title"] == "MySQL StatefulSet replication"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"namespace", "statefulset", "pod"} <= set(variables)
    assert variables["pod"]["multi"] is True
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for words in (
        "heartbeat",
        "seconds behind source",
        "threads",
        "Ready",
        "server-id",
        "error",
        "clone",
        "Donor streams",
        "Archive lag",
        "restore drill",
        "Recoverable window",
        "backup run",
        "store by kind",
        "unarchived",
        "purge blocked",
    ):
        assert words.lower() in titles.lower(), words


def test_every_panel_query_uses_contract_metrics_and_the_variables() -> None:
    contract = set(contract_metrics())
    assert len(contract) == 51
    used: set[str] = set()
    queries = dashboard_queries(load())
    assert len(queries) >= 14
    for title, expr in queries:
        names = promql_metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= contract, f"{title}: {names - contract} not in docs/metrics.md"
        for selector in re.findall(r"mysqlsts_\w+\{([^}]*)\}", expr):
            assert 'namespace="$namespace"' in selector, title
            assert 'statefulset="$statefulset"' in selector, title
            assert 'pod=~"$pod"' in selector, title
        used |= names
    assert used == contract, f"metrics with no panel: {contract - used}"


def test_variables_come_from_contract_metrics() -> None:
    contract = set(contract_metrics())
    for name, query in variable_queries(load()):
        assert promql_metric_names(label_values_metric(query)) <= contract, name


def test_panel_queries_are_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule): a typo in PromQL fails here."""
    queries = [substitute(expr) for _, expr in dashboard_queries(load())]
    queries += [substitute(label_values_metric(q)) for _, q in variable_queries(load())]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{i}", "expr": expr}
                    for i, expr in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr

    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "broken",
                        "rules": [{"record": "dashboard:broken", "expr": "rate(mysqlsts_up[1m]"}],
                    }
                ]
            }
        )
    )
    broken = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert broken.returncode != 0
