"""The alerts: promtool accepts them, each is unit-tested firing and not firing, the plain rules
file and the runbooks in docs/metrics.md agree with the PrometheusRule, and every metric they
use is in the metrics contract."""

from __future__ import annotations

import re
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
    REPO,
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
    "MysqlstsReplicaDiverged",
    "MysqlstsServerDown",
    "MysqlstsPrimaryHeartbeatStale",
    "MysqlstsFewerReadyPods",
    "MysqlstsCloneFailing",
    "MysqlstsBackupTooOld",
    "MysqlstsBackupJobFailed",
    "MysqlstsArchiveLagHigh",
    "MysqlstsArchiveGap",
    "MysqlstsArchiveNoWriter",
    "MysqlstsBackupVerificationFailed",
    "MysqlstsBackupVerificationTooOld",
    "MysqlstsBinlogUnarchivedHigh",
    "MysqlstsBinlogPurgeBlocked",
    "MysqlstsRecoverableWindowShort",
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


@pytest.mark.parametrize(("alert", "cut"), [
    # Without "the newest Job", an old failed Job keeps firing after a newer one succeeded.
    ("MysqlstsBackupJobFailed", " and on (namespace, job_name)"),
    # Without "never succeeded since created", a backup that never ran stays silent.
    ("MysqlstsBackupTooOld", " or (time() - kube_cronjob_created"),
    # Without "its start moved", a new store fires for its first 7 days.
    ("MysqlstsRecoverableWindowShort", " and changes("),
])
def test_promtool_unit_tests_catch_a_backup_alert_cut_short(
    promtool: str, tmp_path: Path, alert: str, cut: str
) -> None:
    tests = _prepare_unit_tests(tmp_path)
    rules_path = tmp_path / "rules-under-test.yaml"
    rules = yaml.safe_load(rules_path.read_text())
    [rule] = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == alert]
    assert cut in rule["expr"]
    rule["expr"] = rule["expr"].split(cut)[0]
    rules_path.write_text(yaml.safe_dump(rules, sort_keys=False))
    done = run([promtool, "test", "rules", str(tests)])
    assert done.returncode != 0
    assert alert in done.stdout + done.stderr


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
        assert " ".join(annotations["description"].split()) == documented[name], (
            f"{name}: description annotation and docs/metrics.md differ"
        )
        assert annotations["runbook_url"].endswith(f"docs/metrics.md#{name.lower()}"), name
        assert rule["labels"]["severity"] in {"warning", "critical"}
    assert set(documented) == {rule["alert"] for rule in alert_rules()}


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lower case, punctuation dropped,
    spaces to hyphens, repeats numbered."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        match = None if in_code else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def test_github_anchors() -> None:
    text = "# Title\n## Stopping and draining: mysql-0\n```\n# not a heading\n```\n## Title\n"
    assert github_anchors(text) == {"title", "stopping-and-draining-mysql-0", "title-1"}


def test_every_runbook_url_points_at_a_section_that_exists() -> None:
    prefix = "https://github.com/mysqlsts/mysqlsts/blob/main/"
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        assert url.startswith(prefix), f"{rule['alert']}: {url} is not in this repository"
        path, _, anchor = url[len(prefix):].partition("#")
        target = REPO / path
        assert target.is_file(), f"{rule['alert']}: {path} does not exist"
        assert anchor in github_anchors(target.read_text()), (
            f"{rule['alert']}: no heading in {path} has the anchor #{anchor}"
        )


def test_alerts_use_only_contract_metrics() -> None:
    known = set(contract_metrics()) | EXTERNAL_METRICS
    for rule in alert_rules():
        used = promql_metric_names(rule["expr"])
        assert used, rule["alert"]
        assert used <= known, f"{rule['alert']} uses unknown metrics {used - known}"


def test_the_window_alert_asks_for_the_backup_components_retention_window() -> None:
    """MysqlstsRecoverableWindowShort holds the retention window twice (the sidecar does not
    know it): as seconds, and as the range its start's changes are counted over (at least the
    window, so it fires until the window has grown back); both are the ConfigMap's."""
    from datetime import timedelta

    from mysqlsts.core.backup_retention import parse_window

    component = REPO / "k8s" / "components" / "backup" / "kustomization.yaml"
    [literals] = [g["literals"] for g in yaml.safe_load(component.read_text())["configMapGenerator"]
                  if g["name"] == "mysql-backup"]
    window = parse_window(dict(item.split("=", 1) for item in literals)["MYSQLSTS_RETAIN_WINDOW"])
    [rule] = [r for r in alert_rules() if r["alert"] == "MysqlstsRecoverableWindowShort"]
    seconds = re.search(r"< (\d+) and", rule["expr"])
    span = re.search(r"\[(\w+)\]", rule["expr"])
    assert seconds is not None and span is not None, rule["expr"]
    assert timedelta(seconds=int(seconds.group(1))) == window
    assert parse_window(span.group(1)) >= window
