"""A data dir that is not this set's, met by the sidecar on a real server: the server refuses
the set's root password, and the sidecar says in one line whose data it is and exits non-zero,
rather than retrying forever; it writes nothing into the data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mysqlsts.core.set_record import SET_RECORD
from tests.integration.sidecar_servers import Harness

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("recorded", "says"),
    [
        (None, "data dir is not this set's: its server refuses this set's root password"),
        ("orders.orders", "data dir is not this set's: set 'orders.orders' made it"),
        ("mysql.mysql", "data dir was cloned in set 'mysql.mysql' but its server refuses"),
    ],
    ids=["no-record", "another-set", "this-set"],
)
def test_a_server_refusing_the_sets_root_password_stops_the_sidecar_with_one_line(
    harness: Harness, tmp_path: Path, recorded: str | None, says: str,
) -> None:
    base = harness.ports.block(3)
    # Another server's data: its root account has a password this set does not know.
    server = harness.server("other", 100, replica=True, port=base)
    data_dir = server.spec.data_dir
    if recorded is not None:
        (data_dir / SET_RECORD).write_text(recorded + "\n")
    names = sorted(p.name for p in data_dir.iterdir())
    ours = tmp_path / "this-sets-secrets"
    ours.mkdir()
    for name, value in (("root-password", "this-sets-root"), ("replication-password", "r"),
                        ("backup-password", "b"), ("clone-token", "t")):
        (ours / name).write_text(value + "\n")
    env = {
        **os.environ,
        "POD_NAME": "mysql-1",
        "MYSQLSTS_PEER_HOST_TEMPLATE": "127.0.0.1",
        "MYSQLSTS_MYSQL_PORT": str(base),
        "MYSQLSTS_CLONE_PORT": str(base + 1),
        "MYSQLSTS_HTTP_PORT": str(base + 2),
        "MYSQLSTS_LISTEN_ADDRESS": "127.0.0.1",
        "MYSQLSTS_DATA_DIR": str(data_dir),
        "MYSQLSTS_ROOT_PASSWORD_FILE": str(ours / "root-password"),
        "MYSQLSTS_REPLICATION_PASSWORD_FILE": str(ours / "replication-password"),
        "MYSQLSTS_BACKUP_PASSWORD_FILE": str(ours / "backup-password"),
        "MYSQLSTS_CLONE_TOKEN_FILE": str(ours / "clone-token"),
        "MYSQLSTS_NO_DONOR": "1",
        "MYSQLSTS_PRIMARY_LEASE": "none",  # the refusal is under test, not the lease
    }
    done = subprocess.run([sys.executable, "-m", "mysqlsts", "sidecar"], env=env, text=True,
                          capture_output=True, timeout=60)
    assert done.returncode == 1, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and errors[0].startswith(f"Error: {says}"), done.stderr[-2000:]
    assert "left untouched" in errors[0]
    assert "Traceback" not in done.stderr and "this-sets-root" not in done.stderr
    # Nothing written into the data dir, and its server is still the other server's, running.
    assert sorted(p.name for p in data_dir.iterdir()) == names
    assert server.value("SELECT 1") == 1
