"""`mysqlsts archive`: stream the primary's binary log into a store until stopped."""

from __future__ import annotations

import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import click

from mysqlsts.adapters.fs import read_secret
from mysqlsts.clone.store_options import S3Options, keys_from_file
from mysqlsts.core.endpoint import host_port
from mysqlsts.core.gtid import parse_mariadb
from mysqlsts.errors import ConfigError, MysqlstsError
from mysqlsts.options import PATH, SECRETS_DIR, option, use


@dataclass(frozen=True)
class ArchiveOptions:
    store: str = option("", "Object store URL the archive is written to: s3://bucket[/prefix] "
                        "or file:///dir (the backups' store).", show_default=False)
    primary: str = option("", "The primary's server, HOST:PORT, whose binary log is "
                          "archived.", show_default=False)
    replication_user: str = option("repl", "Account the archiver reads the binary log with "
                                   "(REPLICATION SLAVE).")
    replication_password_file: Path = option(
        SECRETS_DIR / "replication-password", "File holding that account's password.",
        type=PATH)
    encryption_key_file: Path | None = option(
        None, "File holding the key that encrypts segments at rest (the backups' key). "
        "None: not encrypted.", type=PATH, show_default=False)
    archive_server_id: int = option(
        4000000001, "The server id the archiver announces to the primary: unique among its "
        "replicas (a second client with the same id ends the first one's stream).",
        type=click.IntRange(1, 4294967295))
    archive_lease_seconds: float = option(
        15.0, "How long the store's archive lease lasts unrenewed: another archiver on the same "
        "store takes over this long after the holder stops renewing (the holder stops writing "
        "after two thirds of it).", type=click.FloatRange(1, 3600))
    start_gtid: str = option("current", "Where an empty archive starts: after this MariaDB "
                             "GTID position; `current`: the primary's gtid_binlog_pos when it "
                             "starts; `oldest`: the primary's oldest binary log.")
    segment_seconds: float = option(1.0, "A segment is written at most this long after its "
                                    "first transaction arrived (seconds).",
                                    type=click.FloatRange(0.05, 60))
    segment_mib: int = option(8, "A segment is written once it holds this much (MiB).",
                              type=click.IntRange(1, 128))

    def check(self) -> None:
        """What a type cannot say (presence is checked where it is needed: `archive check`
        needs no primary)."""
        if self.primary and host_port(self.primary) is None:
            raise ConfigError(f"--primary must be HOST:PORT (the primary's server), not "
                              f"{self.primary!r}")
        try:
            if self.start_gtid not in ("current", "oldest"):
                parse_mariadb(self.start_gtid)
        except ValueError as error:
            raise ConfigError(f"--start-gtid: {error}") from None

    def address(self) -> tuple[str, int]:
        address = host_port(self.primary)
        assert address is not None, "check() refuses any other --primary"
        return address


def _required_store(url: str) -> str:
    if not url:
        raise ConfigError("--store is required (s3://bucket[/prefix] or file:///dir)")
    return url


@click.group(invoke_without_command=True)
@use(ArchiveOptions, "archive")
@use(S3Options, "s3")
@click.pass_context
def archive(ctx: click.Context, archive: ArchiveOptions, s3: S3Options) -> None:
    """Archive the primary's binary log continuously into a store, in segments cut at
    transaction boundaries, resuming where the store's archive ends. Runs until stopped.
    With a subcommand, look at the store's archive."""
    if ctx.invoked_subcommand is not None:
        return
    from mysqlsts.adapters.binlog_stream import (
        BinlogStream,
        StreamSource,
        oldest_position,
        primary_position,
    )
    from mysqlsts.archive.archiver import Archiver, ArchiveSettings
    from mysqlsts.archive.lock import ArchiveLock, holder_name, lease_timings
    from mysqlsts.core.backup_layout import BINLOG_LOCK
    from mysqlsts.store.lease_objects import ObjectLeaseStore
    from mysqlsts.store.open import open_store

    _required_store(archive.store)
    if not archive.primary:
        raise ConfigError("--primary HOST:PORT is required (the primary's server)")

    objects = open_store(archive.store, s3.settings())
    keys = keys_from_file(archive.encryption_key_file)
    password = read_secret(archive.replication_password_file, "replication password")
    host, port = archive.address()
    source = StreamSource(host=host, port=port, user=archive.replication_user,
                          server_id=archive.archive_server_id)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # the loop writes what it holds whole and ends

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    settings = ArchiveSettings(max_seconds=archive.segment_seconds,
                               max_bytes=archive.segment_mib * 1024 * 1024,
                               start_position=archive.start_gtid)
    # `oldest`: where the primary's oldest binary log begins. Only the holder of the store's
    # archive lease writes (a second archiver waits).
    lock = ArchiveLock(ObjectLeaseStore(objects, BINLOG_LOCK), holder_name(),
                       lease_timings(archive.archive_lease_seconds))
    Archiver(objects, keys, lambda: BinlogStream(source, password),
             lambda: primary_position(source, password), settings, stop, lock=lock,
             oldest_position=lambda: oldest_position(source, password)).run()


@dataclass(frozen=True)
class ArchiveStore:
    """The archive a person looks at or compacts."""

    store: str = option("", "Object store URL holding the archive.", show_default=False)
    encryption_key_file: Path | None = option(
        None, "File holding the key the archive is encrypted with. None: not encrypted.",
        type=PATH, show_default=False)


@dataclass(frozen=True)
class CheckOptions(ArchiveStore):
    verify: bool = option(False, "Also read every segment and check it against its index "
                          "record (size, SHA-256, opens with the key).", is_flag=True)


@archive.command("check")
@use(CheckOptions, "check")
@use(S3Options, "s3")
def check(check: CheckOptions, s3: S3Options) -> None:
    """What the store's archive holds per domain, and every gap, overlap or (with --verify)
    unreadable segment; exit 1 when there is one."""
    from mysqlsts.archive.inspect import inspect_archive
    from mysqlsts.store.open import open_store

    objects = open_store(_required_store(check.store), s3.settings())
    report = inspect_archive(objects, keys_from_file(check.encryption_key_file),
                             verify=check.verify)
    for line in report.lines:
        click.echo(line)
    if report.problems:
        raise MysqlstsError(f"archive check: {report.problems} problems in "
                            f"{objects.describe()}")


@archive.command("compact")
@use(ArchiveStore, "chosen")
@use(S3Options, "s3")
def compact_index(chosen: ArchiveStore, s3: S3Options) -> None:
    """Write a checkpoint of the archive's index now (the archiver writes one once 1000
    records are in none of its checkpoints): a base, or a delta on the chain, as the due rule
    says; the next start, restore or `archive check` reads the chain and the records written
    after it, not every record. Safe beside a running archiver."""
    from mysqlsts.archive.compact import compact
    from mysqlsts.store.open import open_store

    objects = open_store(_required_store(chosen.store), s3.settings())
    done = compact(objects, keys_from_file(chosen.encryption_key_file), always=True)
    click.echo(f"archive compact: {done}", err=True)
