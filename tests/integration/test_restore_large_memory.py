"""A recovery through a transaction over 128 MiB, at the default sizes (16 MiB large threshold
and chunks), on real MariaDB: its Python memory stays a few chunks, and the recovered server
holds exactly the transaction's rows with its GTID state naming it (issue 18).

The recovery runs in this process (`recover_into`, as the clone step and `backup restore` run
it), under tracemalloc: reading the archive (the large transaction's chunks one at a time onto
the relay log), restoring the base backup and driving the apply. The apply itself, the
prepare and the extraction run in mariadbd, mariadb-backup and mbstream subprocesses, which
tracemalloc does not see: the peak measured is what the sidecar's (or the init container's)
Python pays, not the servers'. The base backup is taken with 4 MiB parts, so its parts (32 MiB
by default, each held whole while it is read) do not hide what the archive costs."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from test_archive_large import HUGE_ROWS, big_insert
from test_backup_take import backup_cli
from test_pitr import Entry, ids, ledger_primary, positions, recovered, write

from mysqlsts.clone.point_in_time import recover_into
from mysqlsts.core.binlog_segment import CHUNK
from mysqlsts.core.pitr import Target
from tests.integration.archive_helpers import archiver_for, running, wait_archived
from tests.servers import MakeServer

pytestmark = pytest.mark.integration


def test_a_recovery_through_a_transaction_over_128_mib_holds_a_few_chunks(
        mariadb_module: MakeServer, free_port: Callable[[], int],
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    made = ledger_primary(mariadb_module, free_port(), tmp_path_factory, "huge-restore")
    primary = made.primary
    primary.sql("CREATE TABLE app.big (id INT PRIMARY KEY, pad LONGBLOB NOT NULL)")
    ledger: list[Entry] = []
    try:
        archiver, stop = archiver_for(primary, made.store)  # the default sizes
        with running(archiver, stop):
            write(primary, 1, 5, ledger)
            done = backup_cli("--store", made.url, "--donor", f"127.0.0.1:{made.donor.port}",
                              "--clone-token-file", str(made.secrets_dir / "clone-token"),
                              "--part-mib", "4")
            assert done.returncode == 0, done.stderr
            write(primary, 6, 5, ledger)
            big_gtid = big_insert(primary, "app.big", HUGE_ROWS, 64 << 10)
            write(primary, 11, 5, ledger)  # after it: the target must stop at it
            records = wait_archived(made.store, None, ledger[-1].gtid, 180)
    finally:
        made.donor.stop()
    [record] = [r for r in records if r.chunks]
    assert record.domains[0].first == big_gtid and record.plain_size > 128 << 20
    expected = primary.checksum("app.big")
    assert expected[0] == HUGE_ROWS

    data_dir = tmp_path / "data"
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        started = time.monotonic()
        said = recover_into(data_dir, made.store, None, Target(gtid=big_gtid))
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    took = time.monotonic() - started
    assert f"at gtid={big_gtid}" in said, said
    # One chunk read and checked (its stored and plain copies), one written: 16 MiB chunks
    # make it a few tens of MiB whatever the transaction's size, against its 144 MiB.
    assert peak < 3 * CHUNK, (f"the recovery held {peak >> 20} MiB for a "
                              f"{record.plain_size >> 20} MiB transaction ({took:.0f}s)")

    server = recovered(mariadb_module, "huge-recovered", data_dir)
    try:
        assert server.checksum("app.big") == expected
        assert ids(server) == {e.id for e in ledger if e.id <= 10}
        assert positions(server) == (big_gtid, big_gtid)
    finally:
        server.stop()
