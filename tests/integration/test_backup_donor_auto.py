"""`mysqlsts backup --donor auto` on a real local set: the pods at the set's peer addresses
(`--replicas` and the peer options, as the local set's sidecars find each other), each
sidecar's /readyz asked; the highest ready replica serves, mysql-0 only in a one-pod set, and a
set whose replicas do not answer is one line, never a backup from the primary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command

pytestmark = pytest.mark.integration


def auto_backup(local: LocalSet, store: Path, replicas: int,
                stride: int) -> subprocess.CompletedProcess[str]:
    """`backup --donor auto` given the set's size and its peer addresses (mysql-0's ports and
    the stride), as the local set's sidecars are given them."""
    first = local.pod(0)
    return subprocess.run(
        [*mysqlsts_command(), "backup", "--store", f"file://{store}", "--donor", "auto",
         "--replicas", str(replicas), "--peer-host-template", first["http"]["host"],
         "--clone-port", str(first["clone"]["port"]), "--http-port", str(first["http"]["port"]),
         "--peer-port-stride", str(stride),
         "--clone-token-file", str(local.directory / "secrets" / "clone-token")],
        text=True, capture_output=True, timeout=600)


def test_auto_chooses_a_ready_replica_and_mysql_0_only_alone(
        local_set: LocalSetFactory, tmp_path: Path) -> None:
    local = local_set(replicas=2)
    store = tmp_path / "store"
    store.mkdir()
    pods = local.status()["pods"]
    stride = pods[1]["mysql"]["port"] - pods[0]["mysql"]["port"]

    # A set said to have 3 pods: mysql-2 does not answer, mysql-1 is ready and serves.
    done = auto_backup(local, store, 3, stride)
    assert done.returncode == 0, done.stderr
    taken = done.stdout.strip()
    assert "backup: donor auto chose mysql-1 at 127.0.0.1:" in done.stderr, done.stderr
    assert (store / "backups" / taken / "manifest.json").exists()

    local.scale(1)
    # mysql-1 is gone: a set of 2 has no ready replica, and the primary is not taken instead.
    refused = auto_backup(local, store, 2, stride)
    assert refused.returncode != 0
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("Error: no donor for a backup: the set of 2 pod(s) has not a ready "
                           "replica (mysql-1: no answer from 127.0.0.1:"), refused.stderr
    assert sorted(p.name for p in (store / "backups").iterdir()) == [taken]

    # A one-pod set has only its primary.
    alone = auto_backup(local, store, 1, stride)
    assert alone.returncode == 0, alone.stderr
    assert "backup: donor auto chose mysql-0 at 127.0.0.1:" in alone.stderr, alone.stderr
    assert (store / "backups" / alone.stdout.strip() / "manifest.json").exists()
