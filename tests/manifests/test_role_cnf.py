"""The role configs in the ConfigMaps: what each flavor needs, and a real mariadbd accepts the
MariaDB ones with the intended effective values."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from manifest_support import K8S

pytestmark = pytest.mark.manifests

MARIADB = K8S / "base" / "cnf" / "mariadb"
MYSQL = K8S / "overlays" / "mysql8" / "cnf"
COMMON = {
    "log_bin": "mysql-bin",
    "sync_binlog": "1",
    "innodb_flush_log_at_trx_commit": "1",
    "relay_log_recovery": "ON",
}


def settings(path: Path) -> dict[str, str]:
    parser = configparser.ConfigParser(allow_no_value=True, interpolation=None)
    parser.read_string(path.read_text())
    return {k.replace("-", "_"): str(v) for k, v in parser["mysqld"].items()}


@pytest.mark.parametrize("role", ["master.cnf", "slave.cnf"])
def test_mariadb_cnf(role: str) -> None:
    values = settings(MARIADB / role)
    assert COMMON.items() <= values.items()
    assert values["binlog_format"] == "ROW"
    assert values["gtid_strict_mode"] == "ON"
    assert values["log_slave_updates"] == "ON"
    assert "super_read_only" not in values  # MariaDB refuses to start with it
    assert values.get("read_only") == "ON"  # every server starts read-only, the primary too


@pytest.mark.parametrize("role", ["master.cnf", "slave.cnf"])
def test_mysql_cnf(role: str) -> None:
    values = settings(MYSQL / role)
    assert COMMON.items() <= values.items()
    assert values["gtid_mode"] == "ON"
    assert values["enforce_gtid_consistency"] == "ON"
    # Every server starts read-only, the primary too, root included (the lease lifts it).
    assert values.get("read_only") == "ON"
    assert values.get("super_read_only") == "ON"


def test_configmaps_carry_the_flavors_files(rendered: dict[str, list[dict[str, Any]]]) -> None:
    for render, source in (("root", MARIADB), ("mysql8", MYSQL)):
        maps = [
            d
            for d in rendered[render]
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("mysql-")
        ]
        assert len(maps) == 1, render
        assert maps[0]["data"] == {
            "master.cnf": (source / "master.cnf").read_text(),
            "slave.cnf": (source / "slave.cnf").read_text(),
        }


def effective(mariadbd: str, cnf: Path) -> dict[str, str]:
    done = subprocess.run(
        [mariadbd, f"--defaults-file={cnf}", "--help", "--verbose"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"mariadbd rejects {cnf}: {done.stderr.strip()}"
    out: dict[str, str] = {}
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


@pytest.mark.parametrize("role", ["master.cnf", "slave.cnf"])
def test_mariadbd_accepts_the_cnf(role: str, tmp_path: Path) -> None:
    mariadbd = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")
    if mariadbd is None:
        pytest.fail("mariadbd not found: run scripts/setup-host test")
    cnf = tmp_path / role
    shutil.copyfile(MARIADB / role, cnf)
    values = effective(mariadbd, cnf)
    assert values["log-bin"] == "mysql-bin"
    assert values["sync-binlog"] == "1"
    assert values["innodb-flush-log-at-trx-commit"] == "1"
    assert values["binlog-format"] == "ROW"
    assert values["gtid-strict-mode"] == "TRUE"
    assert values["log-slave-updates"] == "TRUE"
    assert values["relay-log-recovery"] == "TRUE"
    assert values["read-only"] == "TRUE"  # the primary too: its lease lifts it

    # The check can fail: the upstream example's super-read-only line is refused.
    bad = tmp_path / "bad.cnf"
    bad.write_text(cnf.read_text() + "super_read_only=ON\n")
    with pytest.raises(AssertionError, match="super_read_only"):
        effective(mariadbd, bad)


# -- relay-log recovery, per flavor (issue 13, item 14; docs/sidecar.md) ----------------------

SHIPPED = {
    "mariadb": [MARIADB, MARIADB.parents[3] / "images" / "cnf" / "mariadb"],
    "mysql": [MYSQL, MYSQL.parents[3] / "images" / "cnf" / "mysql"],
}


@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_every_shipped_cnf_recovers_the_relay_log_from_the_applied_position(flavor: str) -> None:
    """After a crash a replica discards its relay log and fetches again from the position it
    has applied, which commits with the transactions themselves (MariaDB: mysql.gtid_slave_pos,
    InnoDB; MySQL 8.4: the only repository is a table, and GTID auto-positioning)."""
    from mysqlsts.core.replication import Source, configure_statements
    from mysqlsts.core.version import parse_version

    for directory in SHIPPED[flavor]:
        for role in ("master.cnf", "slave.cnf"):
            values = settings(directory / role)
            assert values["relay_log_recovery"] == "ON", directory / role
            assert values["read_only"] == "ON", directory / role  # the primary's lease lifts it
            if flavor == "mysql":
                assert values["super_read_only"] == "ON", directory / role
            # MySQL 8.4 removed these options (a server refuses to start with them), and
            # MariaDB has no such repositories.
            assert "relay_log_info_repository" not in values
            assert "master_info_repository" not in values
            if flavor == "mariadb":
                assert values["gtid_strict_mode"] == "ON"
                # gtid_slave_pos stays in the engine mariadb-install-db gives it (InnoDB,
                # checked on a real replica in tests/integration/test_consistency.py).
                assert values.get("gtid_pos_auto_engines", "") in ("", "InnoDB")
            else:
                assert values["gtid_mode"] == "ON"
    version = parse_version("10.11.19-MariaDB" if flavor == "mariadb" else "8.4.3")
    change = configure_statements(version, Source("mysql-0.mysql", 3306, "repl", "pw"),
                                  None, "")[0][-2]
    if flavor == "mariadb":
        assert "MASTER_USE_GTID=slave_pos" in change.sql
    else:
        assert change.sql.startswith("CHANGE REPLICATION SOURCE TO ")
        names = [part.split("=")[0] for part in change.sql.split(" TO ", 1)[1].split(", ")]
        assert dict(zip(names, change.args, strict=True))["SOURCE_AUTO_POSITION"] == 1


def test_server_id_cnf_keeps_every_server_read_only_whatever_the_role_cnf(tmp_path: Path) -> None:
    """`mysqlsts init`'s server-id.cnf is read after master.cnf/primary.cnf (the server reads
    a conf dir in name order), so an older ConfigMap without read_only=ON, or one that turns it
    off, still starts the server read-only: only the primary's sidecar lifts it."""
    from mysqlsts.core.cnf import SERVER_ID_CNF, render_server_id_cnf
    from mysqlsts.core.identity import identify

    mariadbd = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin")
    if mariadbd is None:
        pytest.fail("mariadbd not found: run scripts/setup-host test")
    for role in ("master.cnf", "primary.cnf"):
        conf_d = tmp_path / role / "conf.d"
        conf_d.mkdir(parents=True)
        (conf_d / role).write_text("[mysqld]\nread_only=OFF\n")
        main = tmp_path / role / "my.cnf"
        main.write_text(f"!includedir {conf_d}\n")
        assert effective(mariadbd, main)["read-only"] == "FALSE"  # the check can fail
        (conf_d / SERVER_ID_CNF).write_text(render_server_id_cnf(identify("mysql-0", "mysql",
                                                                          100)))
        assert effective(mariadbd, main)["read-only"] == "TRUE", role
