"""`mysqlsts clone` between real mariadbd servers over loopback, through the real CLI."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mysqlsts.adapters.datadir import (
    read_clone_failures,
    read_clone_record,
    read_set_record,
    state_of,
)
from mysqlsts.clone.donor import BackupSource, DonorServer
from mysqlsts.core.clone_record import CLONE_RECORD
from mysqlsts.core.clone_window import ChunkCounts
from mysqlsts.core.datadir import DataDirState
from mysqlsts.core.set_record import SET_RECORD
from tests.dripfeed import DripFeeders

if TYPE_CHECKING:
    from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration

TOKEN = "integration-clone-token"
BACKUP_USER = "mysqlsts_backup"
BACKUP_PASSWORD = "backup-pw-123"
REPL_PASSWORD = "repl-pw-456"
# What mariabackup 10.11 needs with --slave-info: BACKUP STAGE (RELOAD), SHOW ENGINE INNODB
# STATUS / processlist (PROCESS), SHOW MASTER STATUS (BINLOG MONITOR), SHOW SLAVE STATUS
# (SLAVE MONITOR), and LOCK TABLES for its non-InnoDB fallback.
BACKUP_GRANTS = "RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR"
# Large enough that the stream takes over a second here (~270 MB of poorly compressible rows).
BIG_ROWS = 200_000


class Donor:
    """A DonorServer (as the sidecar embeds it) backing up `server`, in a thread."""

    def __init__(self, server: Server, port: int, secrets_dir: Path,
                 password: str = BACKUP_PASSWORD, token: str = TOKEN,
                 compression: str = "auto") -> None:
        password_file = secrets_dir / f"backup-password-{port}"
        password_file.write_text(password + "\n")
        source = BackupSource("mariadb", server.host, server.port, server.data_dir,
                              BACKUP_USER, password_file, parallel=2)
        self.results: list[tuple[str, int, float, ChunkCounts]] = []
        self.server = DonorServer("127.0.0.1", port, token, source.command_factory(),
                                  self._done,
                                  progress_interval=1.0, compression=compression)
        self.port = port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _done(self, result: str, count: int, seconds: float, chunks: ChunkCounts) -> None:
        self.results.append((result, count, seconds, chunks))

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(15)


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets")
    (path / "clone-token").write_text(TOKEN + "\n")
    (path / "wrong-token").write_text("not-the-token\n")
    return path


@pytest.fixture(scope="module")
def primary(mariadb_module: MakeServer) -> Server:
    server = mariadb_module("mysql-0", server_id=100)
    server.sql(
        f"CREATE USER {BACKUP_USER}@'%' IDENTIFIED BY '{BACKUP_PASSWORD}'",
        f"GRANT {BACKUP_GRANTS} ON *.* TO {BACKUP_USER}@'%'",
        f"CREATE USER repl@'%' IDENTIFIED BY '{REPL_PASSWORD}'",
        "GRANT REPLICATION SLAVE ON *.* TO repl@'%'",
    )
    server.fill("bench.big", BIG_ROWS, payload_bytes=1024)
    server.fill("app.notes", 500)
    return server


@pytest.fixture
def donors(free_port: Callable[[], int], secrets_dir: Path) -> Iterator[Callable[..., Donor]]:
    started: list[Donor] = []

    def make(server: Server, **kw: Any) -> Donor:
        donor = Donor(server, kw.pop("port", None) or free_port(), secrets_dir, **kw)
        started.append(donor)
        return donor

    yield make
    for donor in started:
        donor.stop()


def clone_cli(data_dir: Path, ordinal: int, donor_port: int, secrets_dir: Path,
              token_file: str = "clone-token", deadline: float = 20,
              **popen: Any) -> subprocess.Popen[str]:
    """`mysqlsts clone` as the init container runs it: config through MYSQLSTS_* env only."""
    env = {
        **os.environ,
        "POD_NAME": f"mysql-{ordinal}",
        "MYSQLSTS_PEER_HOST_TEMPLATE": "127.0.0.1",
        # Ordinal n-1's clone port: every donor in these tests listens on its own port.
        "MYSQLSTS_CLONE_PORT": str(donor_port),
        "MYSQLSTS_SRV_NAME": "",
        "MYSQLSTS_CLONE_TOKEN_FILE": str(secrets_dir / token_file),
        "MYSQLSTS_DATA_DIR": str(data_dir),
        "MYSQLSTS_CLONE_DEADLINE": str(deadline),
        "MYSQLSTS_CLONE_PROGRESS_INTERVAL": "0.3",
    }
    return subprocess.Popen([sys.executable, "-m", "mysqlsts", "clone"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


def run_clone(*args: Any, **kw: Any) -> tuple[int, str]:
    proc = clone_cli(*args, **kw)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def start_replication(replica: Server, primary: Server, gtid: str) -> None:
    replica.sql(
        "STOP SLAVE",
        f"SET GLOBAL gtid_slave_pos = '{gtid}'",
        f"CHANGE MASTER TO master_host='{primary.host}', master_port={primary.port}, "
        f"master_user='repl', master_password='{REPL_PASSWORD}', master_use_gtid=slave_pos",
        "START SLAVE",
    )


def wait_caught_up(replica: Server, primary: Server, timeout: float = 60) -> None:
    target = primary.value("SELECT @@gtid_binlog_pos")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replica.value("SELECT @@gtid_slave_pos") == target:
            return
        time.sleep(0.2)
    status = replica.sql("SHOW SLAVE STATUS")
    raise AssertionError(f"replica did not reach {target}: {status}")


def test_clone_from_the_primary_copies_rows_and_records_its_gtid(
    primary: Server, donors: Callable[..., Donor], mariadb: MakeServer, tmp_path: Path,
    secrets_dir: Path,
) -> None:
    donor = donors(primary)
    gtid_at_backup = primary.value("SELECT @@gtid_binlog_pos")
    data_dir = tmp_path / "mysql-1"
    code, err = run_clone(data_dir, 1, donor.port, secrets_dir)
    assert code == 0, err
    assert "clone complete" in err
    # Every step's duration, in the order they ran (docs/clone.md; bench/scale_bench.py).
    steps = re.findall(r"clone step done step=(\w+) seconds=\d+\.\d{3}\n", err)
    assert steps == ["donor", "stream", "prepare", "record", "sync", "move", "marker"]

    record = read_clone_record(data_dir)
    assert record is not None
    assert record.coordinates.gtid == gtid_at_backup
    assert record.coordinates_origin == "binlog_info"
    assert record.donor.port == donor.port and record.donor.ordinal == 0
    assert record.bytes > 200_000_000
    # Progress lines at the configured interval (5 s by default; 0.3 s here).
    assert record.duration_seconds > 0.6
    assert err.count("clone receiving bytes=") >= 2 and "mb_per_s=" in err
    assert "compression=zstd" in err  # both ends default to auto
    assert donor.results[0][:2] == ("ok", record.bytes)
    chunks = donor.results[0][3]  # at most 1 MiB each, compressed or not as the link allowed
    assert chunks.compressed + chunks.raw >= record.bytes / 2**20
    assert state_of(data_dir) is DataDirState.INITIALIZED

    clone = mariadb("mysql-1", server_id=101, data_dir=data_dir)
    assert clone.checksum("bench.big") == primary.checksum("bench.big")
    assert clone.checksum("app.notes") == primary.checksum("app.notes")

    # Re-running after success skips and leaves the data dir alone.
    clone.stop()
    before = (data_dir / CLONE_RECORD).stat().st_mtime_ns
    code, err = run_clone(data_dir, 1, donor.port, secrets_dir)
    assert code == 0, err
    assert "clone skipped" in err
    assert (data_dir / CLONE_RECORD).stat().st_mtime_ns == before
    assert len(donor.results) == 1

    # The clone recorded its set; the same volume under a pod of another set (a reused PVC)
    # is refused in one line before any donor is asked, and nothing in it changes.
    assert read_set_record(data_dir) == "mysql.mysql"
    (data_dir / SET_RECORD).write_text("orders.orders\n")
    files = {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in data_dir.rglob("*")}
    code, err = run_clone(data_dir, 1, donor.port, secrets_dir)
    assert code == 1
    [line] = err.strip().splitlines()
    assert line.startswith("Error: data dir is not this set's: set 'orders.orders' made it, "
                           "this pod is in set 'mysql.mysql'"), line
    assert {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in data_dir.rglob("*")} == files
    assert len(donor.results) == 1


def test_a_donor_that_refuses_compression_still_clones_verified_data(
    primary: Server, donors: Callable[..., Donor], mariadb: MakeServer, tmp_path: Path,
    secrets_dir: Path,
) -> None:
    donor = donors(primary, compression="none")
    data_dir = tmp_path / "mysql-1"
    code, err = run_clone(data_dir, 1, donor.port, secrets_dir)
    assert code == 0, err
    assert "compression=none" in err
    assert donor.results[0][3].compressed == 0 and donor.results[0][3].uncompressed > 0
    clone = mariadb("mysql-1", server_id=101, data_dir=data_dir)
    assert clone.checksum("bench.big") == primary.checksum("bench.big")
    assert clone.checksum("app.notes") == primary.checksum("app.notes")


def test_clone_from_a_replica_records_the_primarys_coordinates(
    primary: Server, donors: Callable[..., Donor], mariadb: MakeServer, tmp_path: Path,
    secrets_dir: Path,
) -> None:
    first = tmp_path / "mysql-1"
    code, err = run_clone(first, 1, donors(primary).port, secrets_dir)
    assert code == 0, err
    record1 = read_clone_record(first)
    assert record1 is not None and record1.coordinates.gtid is not None
    replica = mariadb("mysql-1", server_id=101, data_dir=first)
    start_replication(replica, primary, record1.coordinates.gtid)
    primary.fill("app.after_first", 300)
    wait_caught_up(replica, primary)

    second = tmp_path / "mysql-2"
    code, err = run_clone(second, 2, donors(replica).port, secrets_dir)
    assert code == 0, err
    record2 = read_clone_record(second)
    assert record2 is not None
    assert record2.coordinates_origin == "slave_info"
    assert record2.coordinates.gtid == primary.value("SELECT @@gtid_binlog_pos")
    assert record2.donor_binlog is not None
    assert record2.donor_binlog.gtid == replica.value("SELECT @@gtid_binlog_pos")

    # The recorded GTID is where the new replica continues from the primary, losing nothing.
    third = mariadb("mysql-2", server_id=102, data_dir=second)
    start_replication(third, primary, record2.coordinates.gtid)
    primary.fill("app.after_second", 300)
    wait_caught_up(third, primary)
    for table in ("app.notes", "app.after_first", "app.after_second", "bench.big"):
        assert third.checksum(table) == primary.checksum(table), table


def test_a_wrong_token_is_refused_and_nothing_is_written(
    primary: Server, donors: Callable[..., Donor], tmp_path: Path, secrets_dir: Path,
) -> None:
    donor = donors(primary)
    data_dir = tmp_path / "mysql-1"
    data_dir.mkdir()
    code, err = run_clone(data_dir, 1, donor.port, secrets_dir, token_file="wrong-token")
    assert code != 0
    assert "clone token" in err and err.strip().splitlines()[-1].startswith("Error:")
    assert os.listdir(data_dir) == []  # not even the failure count: the donor never trusted us
    assert [r[0] for r in donor.results] == ["refused"]


def test_a_failed_backup_on_the_donor_is_never_a_clone(
    primary: Server, donors: Callable[..., Donor], tmp_path: Path, secrets_dir: Path,
) -> None:
    donor = donors(primary, password="not-the-backup-password")
    data_dir = tmp_path / "mysql-1"
    code, err = run_clone(data_dir, 1, donor.port, secrets_dir)
    assert code != 0
    assert "exit code" in err and "Access denied" in err
    assert state_of(data_dir) is DataDirState.INCOMPLETE
    assert not (data_dir / CLONE_RECORD).exists()
    assert [r[0] for r in donor.results] == ["failed"]
    assert read_clone_failures(data_dir) == 1


def _staged_bytes(data_dir: Path) -> int:
    total = 0
    for root, _, files in os.walk(data_dir):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def test_a_stream_cut_midway_fails_and_a_rerun_succeeds(
    primary: Server, donors: Callable[..., Donor], mariadb: MakeServer, tmp_path: Path,
    secrets_dir: Path, free_port: Callable[[], int],
) -> None:
    port = free_port()
    donor = donors(primary, port=port)
    data_dir = tmp_path / "mysql-1"
    proc = clone_cli(data_dir, 1, port, secrets_dir)
    deadline = time.monotonic() + 60
    while _staged_bytes(data_dir) < 20_000_000 and proc.poll() is None:
        assert time.monotonic() < deadline, "the clone never got going"
        time.sleep(0.01)
    assert proc.poll() is None, "the clone finished before it could be cut"
    donor.stop()  # the donor pod goes away mid-stream: its backup and connection die
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "ended early" in err or "broke off" in err, err
    assert state_of(data_dir) in (DataDirState.INCOMPLETE, DataDirState.EMPTY)
    assert [r[0] for r in donor.results] == ["failed"]

    # The next run (the init container restarted) wipes the remains and clones afresh.
    donors(primary, port=port)
    code, err = run_clone(data_dir, 1, port, secrets_dir)
    assert code == 0, err
    assert "interrupted clone" in err
    assert read_clone_failures(data_dir) == 1  # kept across the wipe, for the sidecar's metric
    clone = mariadb("mysql-1", server_id=101, data_dir=data_dir)
    assert clone.checksum("bench.big") == primary.checksum("bench.big")


def test_no_donor_gives_up_after_the_deadline(
    tmp_path: Path, secrets_dir: Path, free_port: Callable[[], int],
) -> None:
    data_dir = tmp_path / "mysql-1"
    started = time.monotonic()
    code, err = run_clone(data_dir, 1, free_port(), secrets_dir, deadline=3)
    assert code != 0
    assert "no clone donor was ready within 3s" in err
    assert 2.5 < time.monotonic() - started < 30
    assert not data_dir.exists()


def test_unknown_files_in_the_data_dir_are_left_alone(
    tmp_path: Path, secrets_dir: Path, free_port: Callable[[], int],
) -> None:
    data_dir = tmp_path / "mysql-1"
    data_dir.mkdir()
    (data_dir / "precious.txt").write_text("keep me")
    code, err = run_clone(data_dir, 1, free_port(), secrets_dir)
    assert code != 0 and "refusing to clone over them" in err
    assert os.listdir(data_dir) == ["precious.txt"]


def test_a_clone_succeeds_while_slow_clients_hold_the_donors_port(
    primary: Server, donors: Callable[..., Donor], tmp_path: Path, secrets_dir: Path,
) -> None:
    donor = donors(primary)
    # More dripping connections than the donor lets wait, each renewed whenever it is closed.
    with DripFeeders(donor.port, 12, interval=0.5) as drip:
        time.sleep(1.0)
        code, err = run_clone(tmp_path / "mysql-1", 1, donor.port, secrets_dir, deadline=30)
    assert code == 0, err
    assert "clone complete" in err
    assert state_of(tmp_path / "mysql-1") is DataDirState.INITIALIZED
    # None was let wait past the handshake deadline (10 s), however it dribbled.
    assert drip.lifetimes and max(drip.lifetimes) < 12, drip.lifetimes
