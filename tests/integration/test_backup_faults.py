"""Faults during `mysqlsts backup`, through the real CLI against a real donor (a DonorServer over
a real mariadbd): the backup job SIGKILLed at random instants, and the S3 server (moto, behind a
fault-injecting proxy) failing in the middle of a backup. Whatever happens, no manifest is
written without every part it names, and a backup that completes restores whole."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_backup_take import KEY, backup_cli, backup_donor, write_secrets

from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.open import open_store
from mysqlsts.store.parts import parts_not_stored
from mysqlsts.store.settings import S3Settings
from tests.faultproxy import FaultProxy, Mode
from tests.ports import PortPool
from tests.s3server import REGION, S3Server, create_bucket

if TYPE_CHECKING:
    from test_clone import Donor

    from tests.servers import MakeServer, Server

pytestmark = pytest.mark.integration

KILLS = 20
SEED = int(os.environ.get("MYSQLSTS_KILL_SEED", "20261204"))


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_secrets(tmp_path_factory.mktemp("secrets"))


@pytest.fixture(scope="module")
def donor(mariadb_module: MakeServer, free_port: Callable[[], int],
          secrets_dir: Path) -> Iterator[tuple[Server, Donor]]:
    server = mariadb_module("mysql-0", server_id=100)
    running = backup_donor(server, free_port(), secrets_dir)
    yield server, running
    running.stop()


def backup_argv(url: str, donor_port: int, secrets_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "mysqlsts", "backup", "--store", url, "--donor",
            f"127.0.0.1:{donor_port}", "--clone-token-file", str(secrets_dir / "clone-token"),
            "--encryption-key-file", str(secrets_dir / "backup-key"), "--part-mib", "1",
            *extra]


def every_manifest_is_whole(store: ObjectStore) -> list[str]:
    """The ids of the store's backups; fails the test if any names a part the store lacks."""
    catalog = read_catalog(store, lambda key_id: None if not key_id else _seal_key())
    assert catalog.damaged == (), catalog.damaged
    for manifest in catalog.backups:
        assert parts_not_stored(store, manifest) == [], manifest.backup_id
    return [manifest.backup_id for manifest in catalog.backups]


def _seal_key() -> bytes:
    return BackupKeys.from_secret(KEY).seal_key


def wait_for_parts(store: ObjectStore, proc: subprocess.Popen[bytes], count: int,
                   extra: bool) -> None:
    """Until the running backup (the store's incomplete one) has `count` parts, or it ended."""
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        running = read_catalog(store, lambda key_id: _seal_key()).incomplete
        if running and sum(1 for _ in store.list(f"backups/{running[-1]}/")) >= count:
            break
        time.sleep(0.01)
    if extra:
        time.sleep(0.05)


def test_twenty_kills_at_random_instants_leave_no_manifest_without_its_parts(
        donor: tuple[Server, Donor], secrets_dir: Path, tmp_path: Path,
        mariadb: MakeServer) -> None:
    server, running = donor
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    url = f"file://{store_dir}"
    store = open_store(url, S3Settings())
    whole = subprocess.run(backup_argv(url, running.port, secrets_dir), capture_output=True,
                           text=True, timeout=300, check=False)
    assert whole.returncode == 0, whole.stderr
    assert every_manifest_is_whole(store) == [whole.stdout.strip()]

    parts = len(read_catalog(store, lambda key_id: _seal_key()).backups[0].parts)
    rng = random.Random(SEED)
    backups = 1
    cut_short = 0
    for kill in range(KILLS):
        streams = len(running.results)
        proc = subprocess.Popen(backup_argv(url, running.port, secrets_dir),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # At a random point of the backup's own progress (the parts it has written so far),
        # not of the clock, so a loaded machine still lands the kills mid-backup; a tenth of
        # the time a little after the last part, around the manifest's write.
        wait_for_parts(store, proc, rng.randint(0, parts), extra=rng.random() < 0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        now = len(every_manifest_is_whole(store))
        # Killed before its manifest: no backup; after it (even before the process ended):
        # one whole backup more. Never half of one.
        assert now - backups in ((1,) if proc.returncode == 0 else (0, 1)), \
            f"kill {kill} (seed {SEED})"
        cut_short += now == backups
        backups = now
        # A stream the kill broke ends on the donor within moments; the next backup would
        # only wait for it (the donor serves one at a time), so give it those moments.
        deadline = time.monotonic() + 5
        while len(running.results) == streams and time.monotonic() < deadline:
            time.sleep(0.05)
    assert cut_short >= KILLS // 2, f"only {cut_short} kills landed before the manifest"

    # The newest complete backup restores whole after all that.
    data_dir = tmp_path / "restored"
    restored = backup_cli("restore", "--store", url, "--data-dir", str(data_dir),
                          "--encryption-key-file", str(secrets_dir / "backup-key"))
    assert restored.returncode == 0, restored.stderr
    copy = mariadb("after-kills", server_id=160, data_dir=data_dir)
    assert copy.checksum("app.rows") == server.checksum("app.rows")


class FailAfter:
    """A man in the middle that passes the first `ok` 200 answers, then turns the next `fail`
    of them into 503s (same length, so each response stays well formed)."""

    def __init__(self, ok: int, fail: int) -> None:
        self.ok, self.fail = ok, fail

    def __call__(self, direction: str, data: bytes) -> bytes:
        status = b"HTTP/1.1 200 OK\r\n"
        if direction != "down" or not data.startswith(status):
            return data
        if self.ok > 0:
            self.ok -= 1
            return data
        if self.fail > 0:
            self.fail -= 1
            return b"HTTP/1.1 503 XX\r\n" + data[len(status):]
        return data


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with S3Server(PortPool("store").one()) as server:
        create_bucket(server.endpoint, "faults")
        yield server


def s3_args(endpoint: str, secrets_dir: Path) -> list[str]:
    return ["--s3-endpoint", endpoint, "--s3-region", REGION, "--s3-path-style",
            "--s3-access-key-file", str(secrets_dir / "s3-access"), "--s3-secret-key-file",
            str(secrets_dir / "s3-secret")]


def direct_store(s3: S3Server, secrets_dir: Path, prefix: str) -> ObjectStore:
    return open_store(f"s3://faults/{prefix}", S3Settings(
        endpoint=s3.endpoint, region=REGION, path_style=True,
        access_key_file=secrets_dir / "s3-access", secret_key_file=secrets_dir / "s3-secret"))


def test_5xx_in_the_middle_of_a_backup_is_retried_and_the_backup_is_whole(
        donor: tuple[Server, Donor], secrets_dir: Path, s3: S3Server) -> None:
    _, running = donor
    failing = FailAfter(ok=3, fail=4)
    with FaultProxy(PortPool("store").one(), s3.port, rewrite=failing) as proxy:
        endpoint = f"http://127.0.0.1:{proxy.listen[1]}"
        done = subprocess.run(
            backup_argv("s3://faults/transient", running.port, secrets_dir,
                        *s3_args(endpoint, secrets_dir)),
            capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert failing.fail == 0  # every 503 was met, and retried
    assert every_manifest_is_whole(direct_store(s3, secrets_dir, "transient")) == [
        done.stdout.strip()]


def test_a_store_that_keeps_failing_fails_the_backup_in_one_line_and_commits_nothing(
        donor: tuple[Server, Donor], secrets_dir: Path, s3: S3Server) -> None:
    """The store answers 503 to everything after the first parts, past the client's retry
    deadline (60 s): the backup fails in one line, and no manifest goes in."""
    _, running = donor
    with FaultProxy(PortPool("store").one(), s3.port,
                    rewrite=FailAfter(ok=3, fail=1_000_000)) as proxy:
        endpoint = f"http://127.0.0.1:{proxy.listen[1]}"
        done = subprocess.run(
            backup_argv("s3://faults/down", running.port, secrets_dir,
                        *s3_args(endpoint, secrets_dir)),
            capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    # The store's failure, named as such (not a conflict: the part's first write landed,
    # and only the check that it holds our bytes could not be answered).
    assert last.startswith("Error: store s3://faults/down: cannot "), last
    assert " exists" not in last
    assert done.stdout == ""  # no backup id printed
    store = direct_store(s3, secrets_dir, "down")
    assert every_manifest_is_whole(store) == []
    assert not [info.name for info in store.list() if info.name.endswith("manifest.json")]


def test_a_reset_in_the_middle_of_an_upload_is_retried_to_a_whole_backup_that_restores(
        donor: tuple[Server, Donor], secrets_dir: Path, s3: S3Server, tmp_path: Path,
        mariadb: MakeServer) -> None:
    """The store's connection is reset (a TCP RST on both sides) once, in the middle of a
    part's upload. obstore does not retry a put whose request body was cut off; put_new does
    (the store's one retry policy): the backup is whole, and it restores."""
    server, running = donor
    with FaultProxy(PortPool("store").one(), s3.port) as proxy:
        # At the 300 000th byte up of a connection: inside a 1 MiB part.
        proxy.cut(Mode.RESET, after=300_000, direction="up")
        done = subprocess.run(
            backup_argv("s3://faults/reset-up", running.port, secrets_dir,
                        *s3_args(f"http://127.0.0.1:{proxy.listen[1]}", secrets_dir)),
            capture_output=True, text=True, timeout=300, check=False)
        cut = proxy.cuts_done
    assert cut == 1  # the reset did happen, once
    assert done.returncode == 0, done.stderr
    assert "/part-" in done.stderr and "was cut off" in done.stderr  # the retry, logged
    store = direct_store(s3, secrets_dir, "reset-up")
    assert every_manifest_is_whole(store) == [done.stdout.strip()]
    data_dir = tmp_path / "data"
    restored = backup_cli("restore", "--store", "s3://faults/reset-up",
                          *s3_args(s3.endpoint, secrets_dir), "--data-dir", str(data_dir),
                          "--encryption-key-file", str(secrets_dir / "backup-key"))
    assert restored.returncode == 0, restored.stderr
    copy = mariadb("after-reset-up", server_id=172, data_dir=data_dir)
    assert copy.checksum("app.rows") == server.checksum("app.rows")


def test_an_upload_reset_every_time_fails_the_backup_in_one_line_and_commits_nothing(
        donor: tuple[Server, Donor], secrets_dir: Path, s3: S3Server) -> None:
    """Every connection is reset 300 000 bytes up, so no part ever goes in: the retries end
    (10 of them, within the 60 s deadline) and the backup fails in one line naming the part, with no
    manifest. Healed, a backup to the same store is whole."""
    _, running = donor
    with FaultProxy(PortPool("store").one(), s3.port) as proxy:
        proxy.cut(Mode.RESET, after=300_000, direction="up", times=1_000_000)
        argv = backup_argv("s3://faults/reset-always", running.port, secrets_dir,
                           *s3_args(f"http://127.0.0.1:{proxy.listen[1]}", secrets_dir))
        done = subprocess.run(argv, capture_output=True, text=True, timeout=400, check=False)
        cuts = proxy.cuts_done
        proxy.uncut()
        again = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert cuts > 1  # retried, and cut each time
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: store s3://faults/reset-always: cannot write backups/"), last
    assert "/part-" in last and last.endswith(": the service did not answer "
                                              "(error sending request)"), last
    assert done.stdout == ""  # no backup id printed
    store = direct_store(s3, secrets_dir, "reset-always")
    assert again.returncode == 0, again.stderr
    assert every_manifest_is_whole(store) == [again.stdout.strip()]


@pytest.fixture(scope="module")
def stored_backup(donor: tuple[Server, Donor], secrets_dir: Path, s3: S3Server) -> str:
    """One whole encrypted backup in s3://faults/restore, taken straight to the server."""
    _, running = donor
    done = subprocess.run(
        backup_argv("s3://faults/restore", running.port, secrets_dir,
                    *s3_args(s3.endpoint, secrets_dir)),
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def restore_argv(endpoint: str, secrets_dir: Path, data_dir: Path) -> list[str]:
    return ["restore", "--store", "s3://faults/restore", *s3_args(endpoint, secrets_dir),
            "--data-dir", str(data_dir), "--encryption-key-file",
            str(secrets_dir / "backup-key")]


CUTS = [Mode.TRUNCATE, Mode.RESET]


@pytest.mark.parametrize("mode", CUTS, ids=["truncated", "reset"])
def test_a_download_cut_short_a_few_times_is_resumed_and_the_restore_is_whole(
        mode: Mode, donor: tuple[Server, Donor], stored_backup: str, secrets_dir: Path,
        s3: S3Server, tmp_path: Path, mariadb: MakeServer) -> None:
    """Three of the restore's connections are cut at their 200 000th byte from the store (a
    body short of its Content-Length, or a reset), in the middle of a part: the client resumes
    each download, every part still matches its size and SHA-256, and the restore is whole."""
    server, _ = donor
    data_dir = tmp_path / "data"
    with FaultProxy(PortPool("store").one(), s3.port) as proxy:
        proxy.cut(mode, after=200_000, times=3)
        done = backup_cli(*restore_argv(f"http://127.0.0.1:{proxy.listen[1]}", secrets_dir,
                                        data_dir))
        cuts = proxy.cuts_done
    assert cuts == 3
    assert done.returncode == 0, done.stderr
    assert f"restore complete: backup {stored_backup}" in done.stderr
    copy = mariadb(f"resumed-{mode.value}", server_id=170, data_dir=data_dir)
    assert copy.checksum("app.rows") == server.checksum("app.rows")


@pytest.mark.parametrize("mode", CUTS, ids=["truncated", "reset"])
def test_a_download_always_cut_short_refuses_the_restore_and_a_retry_restores_whole(
        mode: Mode, donor: tuple[Server, Donor], stored_backup: str, secrets_dir: Path,
        s3: S3Server, tmp_path: Path, mariadb: MakeServer) -> None:
    """Every connection is cut at its 20 000th byte from the store: past the listing and the
    manifest, but no part arrives in fewer resumes than the client's retry budget. The restore
    fails in one line and nothing looks finished; healed, the same command restores whole."""
    server, _ = donor
    data_dir = tmp_path / "data"
    with FaultProxy(PortPool("store").one(), s3.port) as proxy:
        argv = restore_argv(f"http://127.0.0.1:{proxy.listen[1]}", secrets_dir, data_dir)
        proxy.cut(mode, after=20_000, times=1_000_000)
        cut_short = backup_cli(*argv)
        cuts = proxy.cuts_done
        proxy.uncut()
        assert cut_short.returncode == 1, (cuts, cut_short.stderr)
        assert cuts >= 1
        last = cut_short.stderr.strip().splitlines()[-1]
        assert last.startswith(
            f"Error: store s3://faults/restore: reading backups/{stored_backup}/part-"), last
        assert " failed: " in last
        assert "restore complete" not in cut_short.stderr
        # Nothing that looks like a finished restore: no clone record, no server data
        # outside the staging dir; the in-progress marker, if anything was begun, stays.
        assert not (data_dir / "mysqlsts-clone.json").exists()
        if data_dir.exists():
            assert (data_dir / ".mysqlsts-in-progress").exists()
            assert not (data_dir / "mysql").exists()
            assert not (data_dir / "ibdata1").exists()

        again = backup_cli(*argv)
    assert again.returncode == 0, again.stderr
    assert f"restore complete: backup {stored_backup}" in again.stderr
    copy = mariadb(f"after-{mode.value}", server_id=171, data_dir=data_dir)
    assert copy.checksum("app.rows") == server.checksum("app.rows")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A directory on its own 8 MiB tmpfs (too small for the backup's data), unmounted at
    teardown; `grow(small_disk)` gives it room in place."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=2g", str(mount)], check=True)


def test_a_full_disk_during_restore_fails_in_one_line_and_a_run_with_room_restores_whole(
        small_disk: Path, donor: tuple[Server, Donor], stored_backup: str, secrets_dir: Path,
        s3: S3Server, tmp_path: Path, mariadb: MakeServer) -> None:
    """The data dir's filesystem fills up while the backup is extracted (mbstream's last words
    are then "my_write() failed." or an "out-of-order chunk", not the full disk): one line
    names the full disk (ENOSPC) and the path, the in-progress marker stays and nothing looks
    finished. Given room, the same command wipes that and restores whole."""
    server, _ = donor
    data_dir = small_disk / "data"
    argv = restore_argv(s3.endpoint, secrets_dir, data_dir)
    full = backup_cli(*argv)
    assert full.returncode == 1, full.stderr
    assert "Traceback" not in full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith(f"Error: the disk is full (ENOSPC) under data dir {data_dir}, "
                           f"writing {data_dir}/"), last
    assert "restore complete" not in full.stderr
    assert (data_dir / ".mysqlsts-in-progress").exists()
    assert not (data_dir / "mysqlsts-clone.json").exists()
    assert not (data_dir / "mysql").exists()
    assert not (data_dir / "ibdata1").exists()

    grow(small_disk)
    again = backup_cli(*argv)
    assert again.returncode == 0, again.stderr
    assert f"restore complete: backup {stored_backup}" in again.stderr
    assert not (data_dir / ".mysqlsts-in-progress").exists()
    # Started from a copy on the ordinary disk: the tmpfs goes at teardown, maybe first.
    copied = tmp_path / "copied"
    shutil.copytree(data_dir, copied, symlinks=True)
    copy = mariadb("after-full-disk", server_id=173, data_dir=copied)
    assert copy.checksum("app.rows") == server.checksum("app.rows")
