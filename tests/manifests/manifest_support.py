"""Shared helpers for the manifest tests: where things are, rendering, metric-name parsing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
MONITORING = K8S / "components" / "monitoring"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"
PLAIN_RULES = MONITORING / "mysqlsts.rules.yaml"
DASHBOARD = MONITORING / "dashboards" / "mysqlsts-replication.json"
METRICS_DOC = REPO / "docs" / "metrics.md"
SECRET_KEYS = ("root-password", "replication-password", "backup-password", "clone-token")
# root-password in a client option file (scripts/make-secrets writes it from root-password).
ROOT_CLIENT_CNF = "root-client.cnf"
SECRET_FILES = (*SECRET_KEYS, ROOT_CLIENT_CNF)
MAKE_SECRETS = REPO / "scripts" / "make-secrets"
OVERLAYS = ("demo", "minikube", "eks", "mysql8", "monitoring", "official-mariadb", "takeover",
            "backup")
# The backup overlay's Secret `mysql-backup`, from files the user creates beside it.
BACKUP_OVERLAY = K8S / "overlays" / "backup"
BACKUP_SECRET_FILES = ("encryption-key", "s3-access-key", "s3-secret-key")

# Metrics the alerts may use that mysqlsts does not export (kube-state-metrics).
EXTERNAL_METRICS = frozenset(
    {"kube_statefulset_replicas", "kube_statefulset_status_replicas_ready",
     # The backup CronJob's (k8s/components/backup) runs.
     "kube_cronjob_created", "kube_cronjob_status_last_successful_time",
     "kube_job_status_start_time", "kube_job_status_active", "kube_job_status_succeeded",
     "kube_job_status_failed"}
)


def find_tool(name: str, env_var: str) -> str | None:
    """`name` from $env_var, then beside this interpreter (the venv's bin), then PATH."""
    override = os.environ.get(env_var)
    if override:
        return override
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def copy_k8s_without_secrets(destination: Path) -> None:
    """k8s/ copied to `destination` without the user's secret files in k8s/secrets/ and
    k8s/overlays/backup/ (the demo overlay's committed throwaway ones stay)."""
    def ignore(directory: str, names: list[str]) -> set[str]:
        if Path(directory) == K8S / "secrets":
            return set(SECRET_FILES) & set(names)
        if Path(directory) == BACKUP_OVERLAY:
            return set(BACKUP_SECRET_FILES) & set(names)
        return set()

    shutil.copytree(K8S, destination, ignore=ignore)


def client_cnf_options(text: str, tmp_dir: Path) -> list[str]:
    """The options MariaDB's clients read from a [client] option file, by its own parser
    (my_print_defaults), so quoting and escapes are judged as the preStop's client judges them."""
    tool = shutil.which("my_print_defaults")
    assert tool, "my_print_defaults not found: run scripts/setup-host test (mariadb-server)"
    path = tmp_dir / "client.cnf"
    path.write_text(text)
    done = subprocess.run([tool, f"--defaults-file={path}", "client"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def kustomize(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    """Render `directory` with `kubectl kustomize`; errors name the directory and the cause."""
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed: {done.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def plain_rules_text() -> str:
    """The operator-free rules file as generated from the PrometheusRule's spec."""
    rule = yaml.safe_load(PROMETHEUS_RULE.read_text())
    header = (
        "# GENERATED from prometheusrule.yaml by\n"
        "# `.venv/bin/python tests/manifests/sync_rules.py`; do not edit.\n"
        "# The same alerts for a Prometheus without the operator (rule_files:).\n"
    )
    body: str = yaml.safe_dump(rule["spec"], sort_keys=False, width=100, allow_unicode=True)
    return header + body


def contract_metrics() -> dict[str, str]:
    """Metric name -> type, from the table in docs/metrics.md."""
    found: dict[str, str] = {}
    for line in METRICS_DOC.read_text().splitlines():
        match = re.match(r"\|\s*`(mysqlsts_[a-z0-9_]+)`\s*\|\s*(\w+)\s*\|", line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _section_metrics(title: str) -> frozenset[str]:
    """The metric names in the table of docs/metrics.md's section `title`."""
    section = METRICS_DOC.read_text().split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    return frozenset(re.findall(r"^\|\s*`(mysqlsts_[a-z0-9_]+)`", section, re.M))


def clone_step_only_metrics() -> frozenset[str]:
    """Metrics only the clone init container exports, while it clones (docs/metrics.md, "While a
    clone runs"): a settled set has none; tests/integration/test_clone_progress.py scrapes them."""
    return _section_metrics("While a clone runs") - _section_metrics("Metrics")


def opt_in_metrics() -> frozenset[str]:
    """Metrics a sidecar exports only with an opt-in option (docs/metrics.md, "With an archive",
    "Backups in the archive's store", "The primary's binary logs, with an archive"): the default
    set has none; test_sidecar_archive.py and test_sidecar_backup_metrics.py scrape them. The
    primary lease is on by default: a default set's primary exports its metric ("With a primary
    lease")."""
    return (_section_metrics("With an archive") | _section_metrics("Backups in the archive's store")
            | _section_metrics("The primary's binary logs, with an archive"))


def lease_metrics() -> frozenset[str]:
    """The primary lease's metrics (docs/metrics.md, "With a primary lease"): exported by a
    default set's primary, whose lease is on by default."""
    return _section_metrics("With a primary lease")


def runbooks_in_doc() -> dict[str, str]:
    """Alert name -> its runbook paragraph (whitespace-normalised) from docs/metrics.md."""
    text = METRICS_DOC.read_text()
    section = text.split("## Alerts and runbooks", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str] = {}
    for chunk in re.split(r"^### ", section, flags=re.M)[1:]:
        name, _, body = chunk.partition("\n")
        found[name.strip()] = " ".join(body.split())
    return found


_PROMQL_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "atan2",
    }
)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are no function, keyword,
    label name or duration. Good for the expressions we write, not a full parser."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string contents (label values)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word in _PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel, rows' nested panels included."""
    queries: list[tuple[str, str]] = []
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            if target.get("expr"):
                queries.append((str(panel.get("title")), str(target["expr"])))
    return queries


def variable_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(variable name, query) for the dashboard's query variables."""
    out = []
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            query = variable["query"]
            out.append((variable["name"], query["query"] if isinstance(query, dict) else query))
    return out


def label_values_metric(query: str) -> str:
    """The series selector inside label_values(SELECTOR, label)."""
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query.strip())
    if not match:
        raise AssertionError(f"not a label_values() query: {query}")
    return match.group(1)
