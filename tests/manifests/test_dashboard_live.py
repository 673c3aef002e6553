"""The dashboard against live data: a local replica set (`mysqlsts local`, real mariadbd
processes and sidecars on loopback) exports every metric a panel uses, and a real Prometheus
scraping that set answers every panel query and variable query with data.

Ports: the local set's and Prometheus's, reserved from the manifests share of tests/ports.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from manifest_support import (
    DASHBOARD,
    clone_step_only_metrics,
    contract_metrics,
    dashboard_queries,
    label_values_metric,
    lease_metrics,
    opt_in_metrics,
    promql_metric_names,
    variable_queries,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.localset import LOCAL_SET_SPAN, LocalSet
from tests.ports import PortPool

pytestmark = pytest.mark.manifests

REPLICAS = 2
PORTS = PortPool("manifests")
LABELS = {"namespace": "local", "statefulset": "mysql"}
SUBSTITUTES = {
    "$__rate_interval": "20s",
    "$__interval": "5s",
    "$__range": "1m",
    "$namespace": LABELS["namespace"],
    "$statefulset": LABELS["statefulset"],
    "$pod": ".*",
}


def get(url: str, timeout: float = 5) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (loopback)
        body: bytes = response.read()
        return body


@pytest.fixture(scope="module")
def local_set(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """A running local set with every pod ready; torn down (and purged) afterwards."""
    directory = tmp_path_factory.mktemp("live") / "set"
    with (PORTS.reserved(LOCAL_SET_SPAN) as base_port,
          LocalSet.started(directory, base_port, REPLICAS) as local):
        pods = local.wait_ready(REPLICAS, timeout=180)
        # The consistency metrics follow the sidecar's first read of its checksum table and
        # the primary's first pass (seconds after set-up), not readiness.
        deadline = time.monotonic() + 30
        while not all("mysqlsts_consistency_last_pass_timestamp_seconds"
                      in sample_names(scrape(pod)) for pod in pods):
            assert time.monotonic() < deadline, "no consistency pass reached every pod in 30s"
            time.sleep(0.5)
        yield sorted(pods, key=lambda pod: int(pod["ordinal"]))


def pod_name(pod: dict[str, Any]) -> str:
    return str(pod.get("name") or f"mysql-{pod['ordinal']}")


def scrape(pod: dict[str, Any]) -> str:
    http = pod["http"]
    return get(f"http://{http['host']}:{http['port']}/metrics").decode()


def sample_names(exposition: str) -> set[str]:
    return {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def substitute(expr: str) -> str:
    for name in sorted(SUBSTITUTES, key=len, reverse=True):
        expr = expr.replace(name, SUBSTITUTES[name])
    return expr


def test_live_scrape_has_every_dashboard_metric(local_set: list[dict[str, Any]]) -> None:
    names: set[str] = set()
    for pod in local_set:
        names |= sample_names(scrape(pod))
    wanted = set().union(*(promql_metric_names(e) for _, e in dashboard_queries(dashboard())))
    assert wanted, "the dashboard has no queries"
    cloning = clone_step_only_metrics()
    assert cloning == {"mysqlsts_clone_phase", "mysqlsts_clone_donor_attempts_total",
                       "mysqlsts_recovery_transactions", "mysqlsts_recovery_transactions_applied",
                       "mysqlsts_recovery_replay_rate"}
    opt_in = opt_in_metrics()
    assert {"mysqlsts_archive_gaps_total", "mysqlsts_backup_last_verification_ok"} <= opt_in
    assert len(opt_in) == 23
    # The primary lease is on by default: the default set's primary exports its metric.
    assert lease_metrics() == {"mysqlsts_primary_lease_held"} <= names
    # Scraped by test_clone_progress.py, test_sidecar_archive.py and
    # test_sidecar_backup_metrics.py.
    elsewhere = cloning | opt_in
    assert wanted - names - elsewhere == set(), "metrics the dashboard uses but no sidecar exports"
    assert set(contract_metrics()) - names - elsewhere == set(), "contract metrics not exported"
    assert elsewhere & names == set(), "the default sidecar exports a clone-step or opt-in metric"
    roles = {pod["role"] for pod in local_set}
    assert roles == {"primary", "replica"}


@pytest.fixture(scope="module")
def prometheus(
    local_set: list[dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Debian's Prometheus scraping every pod of the local set once a second, with the labels
    the PodMonitor gives in Kubernetes."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: run scripts/setup-host test")
    work = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "mysqlsts",
                "static_configs": [
                    {
                        "targets": [f"{pod['http']['host']}:{pod['http']['port']}"],
                        "labels": {**LABELS, "pod": pod_name(pod)},
                    }
                    for pod in local_set
                ],
            }
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = PORTS.one()
    log = (work / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{url}/-/ready")
                break
            except OSError:
                assert process.poll() is None, (work / "prometheus.log").read_text()[-2000:]
                assert time.monotonic() < deadline, "prometheus not ready in 60 s"
                time.sleep(0.5)
        # Enough samples for the rate() and increase() windows.
        time.sleep(25)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


def query(url: str, expr: str) -> list[dict[str, Any]]:
    body = get(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def test_every_panel_query_returns_data(prometheus: str) -> None:
    empty = []
    elsewhere = clone_step_only_metrics() | opt_in_metrics()
    for title, expr in dashboard_queries(dashboard()):
        if promql_metric_names(expr) <= elsewhere:
            # No clone runs in a settled set and no option is opted into:
            # test_clone_progress.py, test_primary_lease.py, test_sidecar_archive.py and
            # test_sidecar_backup_metrics.py scrape these.
            continue
        concrete = substitute(expr)
        deadline = time.monotonic() + 20
        while not query(prometheus, concrete) and time.monotonic() < deadline:
            time.sleep(1)
        if not query(prometheus, concrete):
            empty.append(f"{title}: {concrete}")
    assert empty == [], "panel queries without data:\n" + "\n".join(empty)
    # And the check can fail: a pod regex that matches nothing gives no data.
    assert query(prometheus, 'mysqlsts_up{pod=~"no-such-pod"}') == []


def test_every_variable_has_values(prometheus: str, local_set: list[dict[str, Any]]) -> None:
    expected = {
        "namespace": {LABELS["namespace"]},
        "statefulset": {LABELS["statefulset"]},
        "pod": {pod_name(pod) for pod in local_set},
    }
    for name, variable_query in variable_queries(dashboard()):
        selector = substitute(label_values_metric(variable_query))
        body = get(f"{prometheus}/api/v1/series?" + urllib.parse.urlencode({"match[]": selector}))
        series = json.loads(body)["data"]
        assert {s[name] for s in series} == expected[name], name
