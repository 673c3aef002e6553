"""No secret in any pod's binary or relay logs (issue 13 item 11).

A real local set of 3 pods (mysql-2 cloned from mysql-1, itself cloned from mysql-0); the
primary is killed and re-created, so its sidecar runs the account set-up a second time. Then
every byte of every pod's binary logs and relay logs is searched for each secret value.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mysqlsts.core.accounts import native_password_hash
from tests.localset import LocalSet, LocalSetFactory

pytestmark = pytest.mark.integration

SECRETS = ("root-password", "replication-password", "backup-password", "clone-token")


@pytest.fixture(scope="module")
def local(local_set_module: LocalSetFactory) -> LocalSet:
    return local_set_module(replicas=3)


def _logs(data_dir: Path) -> list[Path]:
    """The binary and relay logs the pod's cnf names (log_bin=mysql-bin, relay_log=relay-bin)."""
    return sorted(p for p in data_dir.iterdir()
                  if p.name.startswith(("mysql-bin.", "relay-bin.")) and p.is_file())


def test_no_pod_logs_a_secret_even_after_a_sidecar_restart(local: LocalSet) -> None:
    secrets = {name: (local.directory / "secrets" / name).read_text().strip()
               for name in SECRETS}
    # The accounts were made with the hash the server itself computes.
    assert local.value(0, f"SELECT PASSWORD('{secrets['replication-password']}')") == (
        native_password_hash(secrets["replication-password"]))
    runs_before = len(local.runs(0, "sidecar"))
    local.kill(0)
    deadline = time.monotonic() + 180
    while not (local.pod(0)["ready"] and len(local.runs(0, "sidecar")) > runs_before):
        assert time.monotonic() < deadline, f"mysql-0 not back: {local.pod(0)}"
        time.sleep(0.5)
    # The restarted sidecar re-applied the accounts (ALTER USER), and replicas applied that too.
    assert "accounts repl (replication) and mysqlsts_backup (backup) are current" in (
        local.runs(0, "sidecar")[-1])
    local.sql(0, "FLUSH BINARY LOGS")
    local.wait_caught_up([1, 2])
    searched = {}
    for ordinal in (0, 1, 2):
        logs = _logs(local.data_dir(ordinal))
        assert any(p.name.startswith("mysql-bin.") for p in logs), f"mysql-{ordinal}: no binlog"
        if ordinal:
            assert any(p.name.startswith("relay-bin.") for p in logs), f"mysql-{ordinal}"
        for path in logs:
            content = path.read_bytes()
            searched[f"mysql-{ordinal}/{path.name}"] = len(content)
            for name, value in secrets.items():
                assert value.encode() not in content, f"{name} in mysql-{ordinal}/{path.name}"
    # The search was not of empty files: the accounts' statements are in there, hashed.
    replication_hash = native_password_hash(secrets["replication-password"]).encode()
    assert any(replication_hash in p.read_bytes() for p in _logs(local.data_dir(2))), searched
