"""`mysqlsts backup ...`: parse, wire, print."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mysqlsts.adapters.fs import read_secret
from mysqlsts.clone.from_backup import seal_keys
from mysqlsts.clone.store_options import S3Options, keys_from_file, recovery_target
from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.endpoint import host_port
from mysqlsts.core.peers import PeerDirectory
from mysqlsts.core.version import Flavor
from mysqlsts.errors import ConfigError, MysqlstsError
from mysqlsts.options import PATH, SECRETS_DIR, FlavorOptions, PeerOptions, option, use

if TYPE_CHECKING:
    from mysqlsts.core.backup_catalog import Catalog
    from mysqlsts.core.backup_manifest import Manifest
    from mysqlsts.core.segment_retention import SegmentPlan
    from mysqlsts.store.base import ObjectStore


@dataclass(frozen=True)
class StoreOptions:
    store: str = option("", "Object store URL: s3://bucket[/prefix] or file:///dir.",
                        show_default=False)

    def url(self) -> str:
        if not self.store:
            raise click.UsageError("--store is required (s3://bucket[/prefix] or file:///dir)")
        return self.store


@dataclass(frozen=True)
class TakeOptions:
    donor: str = option("", "The donor's clone port, HOST:PORT (a replica's sidecar; the "
                        "primary's only when the set has one pod), or `auto`: the "
                        "highest-ordinal ready replica of the set, found through the headless "
                        "Service's DNS (or --replicas) and the sidecars' /readyz.",
                        show_default=False)
    clone_token_file: Path = option(SECRETS_DIR / "clone-token", "File holding the clone "
                                    "token the donor authenticates with.", type=PATH)
    encryption_key_file: Path | None = option(
        None, "File holding the key that encrypts the backup at rest (at least 16 bytes; its "
        "id is recorded). None: not encrypted.", type=PATH, show_default=False)
    donor_deadline: float = option(300.0, "Seconds to keep asking a busy or unreachable "
                                   "donor.", type=click.FloatRange(min=1))
    set_name: str = option("mysql", "The set's name (its StatefulSet's), recorded in the "
                           "manifest; it names the pods for --donor auto.")
    part_mib: int = option(32, "Size of each part before compression, MiB (the first parts "
                           "are smaller: 4, 8, 16 MiB, up to this size).",
                           type=click.IntRange(1, 1024))
    part_parallel: int = option(4, "Parts written at once.", type=click.IntRange(1, 32))
    clone_compression: str = option("auto", "Compression of the stream from the donor.",
                                    type=click.Choice(["auto", "zstd", "none"]))
    verify_after: bool = option(False, "Run the restore drill (`backup verify`) on the new "
                                "backup once its manifest is in; a failed drill exits 3 "
                                "(the backup stays, its verdict recorded `failed`).",
                                is_flag=True)


@dataclass(frozen=True)
class FindDonorOptions:
    service: str = option("mysql", "With --donor auto: the headless Service that names the "
                          "set's pods (its DNS SRV records list them).")
    replicas: int = option(0, "With --donor auto: the set's size, its pods at the peer "
                           "addresses (--peer-host-template ...); 0: the pods the Service's "
                           "DNS lists.", type=click.IntRange(min=0))

    def directory(self, statefulset: str, peers: PeerOptions) -> PeerDirectory:
        return PeerDirectory(
            statefulset=statefulset, service=self.service,
            host_template=peers.peer_host_template, mysql_port=peers.mysql_port,
            clone_port=peers.clone_port, http_port=peers.http_port,
            port_stride=peers.peer_port_stride)


@dataclass(frozen=True)
class DrillOptions:
    scratch_dir: Path | None = option(
        None, "Directory under which the drill's scratch data dir is made and removed (room "
        "for the whole restored backup).", type=PATH, show_default="the system's temp dir")
    prepare_memory: str = option("256M", "Memory for the backup tool's prepare step.")
    heartbeat_database: str = option(
        "mysqlsts", "Database of the sidecar's heartbeat table, whose row the restored data "
        "must hold at or before the backup's GTID (checked when the table is there).")


@click.group(invoke_without_command=True)
@use(StoreOptions, "store")
@use(S3Options, "s3")
@use(TakeOptions, "take")
@use(FlavorOptions, "flavor")
@use(DrillOptions, "drill")
@use(FindDonorOptions, "find")
@use(PeerOptions, "peers")
@click.pass_context
def backup(ctx: click.Context, store: StoreOptions, s3: S3Options, take: TakeOptions,
           flavor: FlavorOptions, drill: DrillOptions, find: FindDonorOptions,
           peers: PeerOptions) -> None:
    """Take a base backup from a donor into an object store (s3:// or file://), with
    --verify-after then its restore drill; with a subcommand, work on the store's backups."""
    if ctx.invoked_subcommand is not None:
        return
    from mysqlsts.clone.to_backup import backup_from_donor
    from mysqlsts.core.clone_record import DonorAddress
    from mysqlsts.store.open import open_store

    address = host_port(take.donor)
    if take.donor != "auto" and address is None:
        raise click.UsageError("--donor HOST:PORT or --donor auto is required (the donor's "
                               "clone port)")
    if take.verify_after and flavor.flavor != Flavor.MARIADB:
        raise ConfigError(f"--verify-after: the restore drill restores MariaDB backups only, "
                          f"and --flavor is {flavor.flavor}")
    if take.verify_after and drill.scratch_dir is not None and not drill.scratch_dir.is_dir():
        raise ConfigError(f"scratch dir {drill.scratch_dir}: no such directory")
    keys = keys_from_file(take.encryption_key_file)
    objects = open_store(store.url(), s3.settings())
    if take.donor == "auto":
        from mysqlsts.backup.donor import find_donor
        donor = find_donor(find.directory(take.set_name, peers), find.replicas)
    else:
        assert address is not None
        donor = DonorAddress(-1, *address)
    manifest = backup_from_donor(
        objects, keys, donor,
        read_secret(take.clone_token_file, "clone token"), set_name=take.set_name,
        flavor=flavor.flavor, deadline_seconds=take.donor_deadline,
        compression=take.clone_compression, part_size=take.part_mib * 1024 * 1024,
        parallel=take.part_parallel)
    click.echo(f"backup: complete id={manifest.backup_id} gtid={manifest.gtid} "
               f"bytes={manifest.size} parts={len(manifest.parts)} store={objects.describe()}",
               err=True)
    click.echo(manifest.backup_id)
    if take.verify_after:
        # In this process: the id needs no hand-over, and the drill checks exactly the
        # manifest just committed (not the newest one some other writer may have added).
        click.echo(_drill(objects, manifest, keys, drill), err=True)


def _drill(objects: ObjectStore, manifest: Manifest, keys: BackupKeys | None,
           drill: DrillOptions) -> str:
    """The restore drill of `manifest`'s backup, its verdict recorded beside it: the line
    that says it passed, or MysqlstsError with the one line that says why not."""
    from mysqlsts.backup.verify import (
        BackupUnverified,
        DrillSettings,
        record_verdict,
        verify_backup,
    )

    verdict = verify_backup(objects, manifest, keys, DrillSettings(
        drill.scratch_dir, drill.heartbeat_database, drill.prepare_memory))
    name = record_verdict(objects, verdict)
    if verdict.reason:
        raise BackupUnverified(f"backup {manifest.backup_id} failed verification: "
                               f"{verdict.reason} (recorded as {name})")
    return (f"backup verify: backup {manifest.backup_id} verified: restored, started, "
            f"{len(verdict.tables)} tables passed CHECK TABLE, gtid={verdict.gtid}, "
            f"in {verdict.seconds:.1f}s (recorded as {name})")


@dataclass(frozen=True)
class KeyOptions:
    encryption_key_file: Path | None = option(
        None, "The backups' encryption key file: encrypted manifests are verified with it, "
        "and with it given an unencrypted backup is not restored. None: no key.", type=PATH,
        show_default=False)

    def keys(self) -> BackupKeys | None:
        return keys_from_file(self.encryption_key_file)


@dataclass(frozen=True)
class RetentionOptions:
    retain_window: str = option("7d", "Keep every backup, and every archived binlog "
                                "segment, a point of this recovery window needs (d, h or m).")
    retain_min: int = option(2, "Keep at least this many backups whose last drill did not "
                             "fail, whatever their age.",
                             type=click.IntRange(min=1))


@dataclass(frozen=True)
class RestoreOptions:
    data_dir: Path | None = option(None, "The data dir to fill: empty, or holding an "
                                   "interrupted restore or clone (required).", type=PATH,
                                   show_default=False)
    backup: str = option("", "Restore this backup alone (no archived transaction after it).",
                         show_default="the latest recoverable point")
    prepare_memory: str = option("256M", "Memory for the backup tool's prepare step.")
    to_gtid: str = option("", "Point-in-time recovery through this GTID (inclusive; or one "
                          "per domain: the binlog prefix through the last), from the newest "
                          "backup before it and the binlog archive.",
                          show_default=False)
    to_time: str = option("", "Point-in-time recovery to the last transaction committed at "
                          "or before this ISO-8601 time (with Z or an offset).",
                          show_default=False)

    def target(self) -> Path:
        if self.data_dir is None:
            raise click.UsageError("--data-dir is required")
        return self.data_dir


@backup.command("list")
@use(StoreOptions, "store")
@use(S3Options, "s3")
@use(KeyOptions, "key")
@click.option("--json", "as_json", is_flag=True, help="One JSON document, for scripts.")
def list_backups(store: StoreOptions, s3: S3Options, key: KeyOptions, as_json: bool) -> None:
    """The store's backups (those with a manifest), their GTID, time and size, and the
    recoverable window; damaged and incomplete ones are named."""
    from mysqlsts.core.backup_catalog import catalog_json, catalog_table
    from mysqlsts.store.catalog import read_catalog
    from mysqlsts.store.open import open_store

    objects = open_store(store.url(), s3.settings())
    catalog = read_catalog(objects, seal_keys(key.keys()))
    if as_json:
        click.echo(json.dumps(catalog_json(catalog, _recoverable(objects, catalog, key)),
                              indent=2))
    else:
        click.echo("\n".join(catalog_table(catalog)))


def _recoverable(objects: ObjectStore, catalog: Catalog, key: KeyOptions) -> dict[str, Any]:
    """The window of `backup list --json` (core.backup_catalog.recoverable). An archive that
    cannot be read is named, and the backups' own points stand."""
    from mysqlsts.core.backup_catalog import recoverable
    from mysqlsts.store.binlog_archive import load_records

    try:
        records = load_records(objects, key.keys())
    except MysqlstsError as error:
        return recoverable(catalog, [], str(error))
    return recoverable(catalog, records)


@backup.command("prune")
@use(StoreOptions, "store")
@use(S3Options, "s3")
@use(RetentionOptions, "retention")
@use(KeyOptions, "key")
@click.option("--dry-run", is_flag=True, help="Say what would be deleted; delete nothing.")
def prune(store: StoreOptions, s3: S3Options, retention: RetentionOptions, key: KeyOptions,
          dry_run: bool) -> None:
    """Delete the backups retention no longer needs, computed over manifests (never by object
    age), then the binlog archive's segments before the oldest kept backup (and orphaned ones
    an hour past); incomplete backups older than 6 hours go too. Damaged manifests are left
    alone. Everything is planned before anything is deleted."""
    from mysqlsts.clone.to_backup import remove_incomplete
    from mysqlsts.core.backup_retention import Retained, parse_window, plan_retention
    from mysqlsts.core.backup_verify import FAILED
    from mysqlsts.store.archive_checkpoints import remove_stale
    from mysqlsts.store.binlog_archive import remove_segment
    from mysqlsts.store.catalog import read_catalog
    from mysqlsts.store.open import open_store
    from mysqlsts.store.parts import remove_backup

    try:
        window = parse_window(retention.retain_window)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    objects = open_store(store.url(), s3.settings())
    catalog = read_catalog(objects, seal_keys(key.keys()))
    now = datetime.now(UTC)
    drilled = {backup: v.result for backup, v in catalog.verified.items()}
    plan = plan_retention([Retained(m.backup_id, m.end, drilled.get(m.backup_id))
                           for m in catalog.backups], now, window, retention.retain_min)
    segments = _plan_segments(objects, catalog, plan.keep, key, now)
    verb = "would delete" if dry_run else "deleted"
    for backup_id in plan.delete:
        if not dry_run:
            remove_backup(objects, backup_id)
        failed = " (its last drill failed)" if drilled.get(backup_id) == FAILED else ""
        click.echo(f"backup prune: {verb} {backup_id}{failed}", err=True)
    checkpoints: list[str] = []
    if segments is not None:
        for record in segments.delete:
            if not dry_run:
                remove_segment(objects, record)
        for name in segments.orphans:
            if not dry_run:
                objects.delete(name)
        # After the records: the index's checkpoints no reader's chain needs (never the chain).
        checkpoints = remove_stale(objects, dry_run=dry_run)
        if segments.delete:
            first, last = segments.delete[0], segments.delete[-1]
            click.echo(f"backup prune: {verb} {len(segments.delete)} archive segments, "
                       f"{first.domains[0].first} .. {last.domains[-1].last}", err=True)
    removed = [] if dry_run else remove_incomplete(objects, now)
    archive = ("" if segments is None else f" segments_deleted={len(segments.delete)} "
               f"segments_kept={segments.kept} orphans_deleted={len(segments.orphans)} "
               f"checkpoints_deleted={len(checkpoints)}")
    click.echo(f"backup prune: kept={len(plan.keep)} deleted={len(plan.delete)} "
               f"incomplete_removed={len(removed)} oldest_needed={plan.oldest_needed} "
               f"damaged={len(catalog.damaged)} proven={plan.proven} "
               f"failed_kept={len(plan.failed_kept)}{archive}", err=True)


def _plan_segments(objects: ObjectStore, catalog: Catalog, keep: tuple[str, ...],
                   key: KeyOptions, now: datetime) -> SegmentPlan | None:
    """What of the binlog archive goes once only the `keep` backups remain (None: the store
    has no archive). Segments are listed before the index is read, so one written meanwhile
    is seen with its record; an index record that does not parse stops the prune before
    anything is deleted."""
    from mysqlsts.core.segment_retention import plan_segments
    from mysqlsts.store.binlog_archive import load_records, segment_names

    names = segment_names(objects)
    records = load_records(objects, key.keys())
    if not names and not records:
        return None
    kept = [m for m in catalog.backups if m.backup_id in keep]
    if any(m.flavor != "mariadb" for m in kept):
        raise ConfigError("the store holds MySQL backups beside a binlog archive (MariaDB "
                          "GTIDs): the archive's retention is MariaDB's only; nothing pruned")
    return plan_segments([m.gtid for m in kept], records, names, now)


@backup.command("restore")
@use(StoreOptions, "store")
@use(S3Options, "s3")
@use(RestoreOptions, "target")
@use(KeyOptions, "key")
def restore(store: StoreOptions, s3: S3Options, target: RestoreOptions,
            key: KeyOptions) -> None:
    """Restore a backup into an empty data dir, through the clone's staging dir, prepare,
    record and marker; the whole backup is checked before anything is written. With --to-gtid
    or --to-time: point-in-time recovery from the newest backup before the target and the
    binlog archive, refused before anything is read when the target is outside the window.
    With neither (and no --backup): the latest recoverable point, the newest backup and the
    archive's contiguous run after it (the point chosen is said first)."""
    from mysqlsts.clone.from_backup import choose_backup, restore_into, restore_skipped
    from mysqlsts.store.open import open_store

    data_dir = target.target()
    objects = open_store(store.url(), s3.settings())
    keys = key.keys()
    point = recovery_target(target.to_gtid, target.to_time)
    if point is not None:
        from mysqlsts.clone.point_in_time import recover_into
        if target.backup:
            raise ConfigError("--backup and --to-gtid/--to-time exclude each other: a "
                              "recovery chooses its backup")
        click.echo(recover_into(data_dir, objects, keys, point,
                                prepare_memory=target.prepare_memory), err=True)
        return
    if target.backup or restore_skipped(data_dir):  # data in place: restore_into says so
        manifest = choose_backup(objects, keys, target.backup)
    else:
        from mysqlsts.clone.point_in_time import choose_latest, recover_into
        from mysqlsts.core.pitr import Target

        latest = choose_latest(objects, keys)
        click.echo(latest.said, err=True)
        if latest.plan is not None:
            click.echo(recover_into(data_dir, objects, keys, Target(),
                                    prepare_memory=target.prepare_memory,
                                    planned=(latest.plan, latest.manifest),
                                    index=latest.records), err=True)
            return
        manifest = latest.manifest
    click.echo(restore_into(data_dir, objects, manifest, keys,
                            prepare_memory=target.prepare_memory), err=True)


@dataclass(frozen=True)
class ChosenBackup:
    backup: str = option("", "The backup to verify.", show_default="the newest")


@backup.command("verify")
@use(StoreOptions, "store")
@use(S3Options, "s3")
@use(ChosenBackup, "chosen")
@use(DrillOptions, "drill")
@use(KeyOptions, "key")
def verify(store: StoreOptions, s3: S3Options, chosen: ChosenBackup, drill: DrillOptions,
           key: KeyOptions) -> None:
    """The restore drill: restore a backup into a scratch server (as a restore does), start
    it, CHECK TABLE every table, prove it stands at the backup's GTID, record the verdict
    beside the backup; exit 3 with the reason when it fails."""
    from mysqlsts.clone.from_backup import choose_backup
    from mysqlsts.store.open import open_store

    objects = open_store(store.url(), s3.settings())
    keys = key.keys()
    click.echo(_drill(objects, choose_backup(objects, keys, chosen.backup), keys, drill),
               err=True)
