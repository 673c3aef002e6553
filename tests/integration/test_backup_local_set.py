"""A backup of a real `mysqlsts local` set, from a replica's donor (as its sidecar serves it),
restored into a new data dir whose server holds the primary's rows at the backup's GTID."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.localset import LocalSet, LocalSetFactory, mysqlsts_command
from tests.ports import PortPool
from tests.servers import ServerFactory

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def local(local_set_module: LocalSetFactory) -> LocalSet:
    return local_set_module(replicas=2)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*mysqlsts_command(), *args], text=True, capture_output=True,
                          timeout=600)


def test_backup_from_a_replica_and_restore(local: LocalSet, tmp_path: Path,
                                           free_port: PortPool) -> None:
    local.sql(0, "CREATE DATABASE IF NOT EXISTS app",
              "CREATE TABLE app.items (id INT PRIMARY KEY, name VARCHAR(40))",
              "INSERT INTO app.items SELECT seq, CONCAT('item-', seq) FROM app.seq_1_to_5000")
    local.wait_caught_up([1])
    gtid = local.value(0, "SELECT @@gtid_binlog_pos")
    store = tmp_path / "store"
    store.mkdir()
    url = f"file://{store}"
    donor_port = local.base_port + 10 + 1  # mysql-1's clone donor
    done = cli("backup", "--store", url, "--donor", f"127.0.0.1:{donor_port}",
               "--clone-token-file", str(local.directory / "secrets" / "clone-token"),
               "--part-mib", "8")
    assert done.returncode == 0, done.stderr
    listed = json.loads(cli("backup", "list", "--store", url, "--json").stdout)
    # The primary's heartbeat keeps writing: the backup is at or after the rows' GTID.
    [backed_up] = [b["gtid"] for b in listed["backups"]]
    domain, server, seq = gtid.split("-")
    assert backed_up.rsplit("-", 1)[0] == f"{domain}-{server}"
    assert int(backed_up.rsplit("-", 1)[1]) >= int(seq)

    data_dir = tmp_path / "restored"
    restored = cli("backup", "restore", "--store", url, "--data-dir", str(data_dir))
    assert restored.returncode == 0, restored.stderr
    assert json.loads((data_dir / "mysqlsts-clone.json").read_text())["gtid"] == backed_up
    copy = ServerFactory(tmp_path / "server", Path("/nonexistent"), local.root_password,
                         free_port)("restored", server_id=160, data_dir=data_dir)
    try:
        assert copy.checksum("app.items") == (
            5000, int(local.sql(0, "CHECKSUM TABLE app.items")[0][1]))
    finally:
        copy.stop()
