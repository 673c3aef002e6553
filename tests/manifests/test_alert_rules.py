"""The alerts: promtool accepts them, each is unit-tested firing and not firing, the plain rules
file and the runbooks in docs/metrics.md agree with the PrometheusRule, and every metric they
use is in the metrics contract."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_support import (
    EXTERNAL_METRICS,
    PLAIN_RULES,
    PROMETHEUS_RULE,
    contract_metrics,
    plain_rules_text,
    promql_metric_names,
    runbooks_in_doc,
)

pytestmark = pytest.mark.manifests

PROMTOOL_TESTS = Path(__file__).resolve().parent / "promtool" / "mysqlsts_alerts_test.yaml"
REQUIRED_ALERTS = {
    "MysqlstsReplicationLagHigh",
    "MysqlstsReplicationStopped",
    "MysqlstsReplicationError",
    "MysqlstsErrantTransactions",
    "MysqlstsServerDown",
    "MysqlstsPrimaryHeartbeatStale",
    "MysqlstsFewerReadyPods",
    "MysqlstsCloneFailing",
}


def alert_rules() -> list[dict[str, Any]]:
    spec = yaml.safe_load(PROMETHEUS_RULE.read_text())["spec"]
    return [rule for group in spec["groups"] for rule in group["rules"] if "alert" in rule]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def test_alerts_cover_the_issue() -> None:
    assert {rule["alert"] for rule in alert_rules()} == REQUIRED_ALERTS


def test_plain_rules_file_is_generated_from_the_prometheusrule() -> None:
    assert PLAIN_RULES.read_text() == plain_rules_text(), (
        "k8s/components/monitoring/mysqlsts.rules.yaml is stale: "
        "run .venv/bin/python tests/manifests/sync_rules.py"
    )


def test_promtool_check_rules(promtool: str) -> None:
    done = run([promtool, "check", "rules", str(PLAIN_RULES)])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in done.stdout


def _prepare_unit_tests(tmp_path: Path) -> Path:
    rules = yaml.safe_load(PLAIN_RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules-under-test.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    tests = tmp_path / PROMTOOL_TESTS.name
    shutil.copyfile(PROMTOOL_TESTS, tests)
    return tests


def test_promtool_unit_tests_pass(promtool: str, tmp_path: Path) -> None:
    done = run([promtool, "test", "rules", str(_prepare_unit_tests(tmp_path))])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def test_promtool_unit_tests_can_fail(promtool: str, tmp_path: Path) -> None:
    """The same tests against a rule whose threshold moved must fail."""
    tests = _prepare_unit_tests(tmp_path)
    rules_path = tmp_path / "rules-under-test.yaml"
    rules = rules_path.read_text()
    assert "mysqlsts_replication_lag_seconds > 30" in rules
    rules_path.write_text(
        rules.replace(
            "mysqlsts_replication_lag_seconds > 30", "mysqlsts_replication_lag_seconds > 300"
        )
    )
    done = run([promtool, "test", "rules", str(tests)])
    assert done.returncode != 0
    assert "MysqlstsReplicationLagHigh" in done.stdout + done.stderr


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never tested firing"
    assert names - quiet == set(), "alerts never tested staying quiet"


def test_every_alert_has_its_runbook_in_the_docs() -> None:
    documented = runbooks_in_doc()
    for rule in alert_rules():
        name = rule["alert"]
        annotations = rule["annotations"]
        assert annotations.get("summary"), name
        assert name in documented, f"docs/metrics.md has no section for {name}"
        assert " ".join(annotations["runbook"].split()) == documented[name], (
            f"{name}: runbook annotation and docs/metrics.md differ"
        )
        assert rule["labels"]["severity"] in {"warning", "critical"}
    assert set(documented) == {rule["alert"] for rule in alert_rules()}


def test_alerts_use_only_contract_metrics() -> None:
    known = set(contract_metrics()) | EXTERNAL_METRICS
    for rule in alert_rules():
        used = promql_metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']} uses unknown metrics {used - known}"
