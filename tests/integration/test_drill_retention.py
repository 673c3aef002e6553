"""`mysqlsts backup prune` counts the restore drill's verdicts, on a file:// store with real
backups of a real mariadbd: when the newest backups' drills failed, the older backup that
passed its drill is the base the window needs and survives the prune (and still restores),
where a prune blind to the verdicts deleted it; a restore with no target then takes it, passing
over the newer failed ones."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_backup_take import backup_cli
from test_clone import Donor
from test_segment_prune import backed_up_primary

from mysqlsts.backup.verify import record_verdict
from mysqlsts.core.backup_verify import FAILED, Verdict
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.filestore import FileStore
from tests.servers import MakeServer

pytestmark = pytest.mark.integration

WINDOW = 60  # seconds: `--retain-window 1m`, the smallest there is


def test_the_older_passed_backup_survives_failed_drills(
        mariadb: MakeServer, free_port: Callable[[], int], tmp_path: Path) -> None:
    primary, secrets = backed_up_primary(mariadb, tmp_path)
    primary.fill("app.rows", 2_000)
    donor = Donor(primary, free_port(), secrets)
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    store = FileStore(store_dir)
    url = ["--store", f"file://{store_dir}"]
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def take() -> str:
        primary.fill("app.rows", 100)
        done = backup_cli(*url, "--donor", f"127.0.0.1:{donor.port}", "--clone-token-file",
                          str(secrets / "clone-token"))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def drill(backup: str) -> None:
        done = backup_cli("verify", *url, "--backup", backup, "--scratch-dir", str(scratch))
        assert done.returncode == 0, done.stderr

    def fail(backup: str) -> None:
        """Its drill failed: the verdict object as the drill writes it, through its code."""
        record_verdict(store, Verdict(backup, FAILED, "CHECK TABLE app.rows failed: Corrupt",
                                      datetime.now(UTC), 4.2, ""))

    try:
        never = take()  # never drilled, older than everything the window needs
        proven = take()
        drill(proven)
        broken = take()
        fail(broken)
        ended = read_catalog(store).backups[-1].end
        time.sleep(max(0.0, WINDOW + 2 - (datetime.now(UTC) - ended).total_seconds()))
        newest = take()  # inside the window, and its drill failed too
        fail(newest)
    finally:
        donor.stop()
    catalog = read_catalog(store)
    assert {b: v.result for b, v in catalog.verified.items()} == {
        proven: "ok", broken: FAILED, newest: FAILED}

    done = backup_cli("prune", *url, "--retain-window", "1m", "--retain-min", "1")
    assert done.returncode == 0, done.stderr
    # Blind to the verdicts, `broken` (the newest before the window's start) was the base and
    # `proven` went with `never`: the window's oldest point stood on a failed backup alone.
    assert [m.backup_id for m in read_catalog(store).backups] == [proven, broken, newest]
    assert f"backup prune: deleted {never}\n" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last == (f"backup prune: kept=3 deleted=1 incomplete_removed=0 "
                    f"oldest_needed={proven} damaged=0 proven={proven} failed_kept=2"), last
    assert not any(info.name.startswith(f"backups/{never}/") for info in store.list())
    # What survived is whole: the drill restores it again. And a restore with no target
    # passes over the failed newer backups for it, saying so in one line.
    drill(proven)
    restored = backup_cli("restore", *url, "--data-dir", str(tmp_path / "restored"))
    assert restored.returncode == 0, restored.stderr
    said = restored.stderr.strip().splitlines()
    assert said[0].startswith(f"restore: no target: backup {proven} alone, at gtid="), said
    assert f"(skipped backups {newest}, {broken}: last drill failed)" in said[0]
    assert said[-1].startswith(f"restore complete: backup {proven} "), said
