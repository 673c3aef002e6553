"""What a store holds, as `mysqlsts backup list` shows it (pure).

A backup exists once its manifest does: parts without one are leftovers of a backup still
running or killed, never listed as a backup. The JSON shape is fixed by issue 18:
`backups` (each with `id`, `gtid`, `end_time`, ...) and `recoverable` (`from`, `to`). Until the
binlog archive exists, only the backups' own points are restorable: `continuous` says so, and
`from`/`to` are the oldest and newest backup's end times (null with no backup). Each backup's
`verified` is its last restore drill (`time`, `result`), null when none ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mysqlsts.core.backup_manifest import Manifest
from mysqlsts.core.backup_verify import Verification
from mysqlsts.core.binlog_index import SegmentRecord
from mysqlsts.core.pitr import BaseBackup, recoverable_span


@dataclass(frozen=True)
class Damaged:
    backup_id: str
    reason: str


@dataclass(frozen=True)
class Catalog:
    backups: tuple[Manifest, ...]  # valid manifests, oldest first
    damaged: tuple[Damaged, ...]  # manifests that did not parse
    incomplete: tuple[str, ...]  # ids with parts but no manifest
    verified: Mapping[str, Verification] = field(default_factory=dict)  # the last drill by id


def build_catalog(manifests: Sequence[Manifest], damaged: Sequence[Damaged],
                  ids_with_objects: Sequence[str],
                  verified: Mapping[str, Verification] | None = None) -> Catalog:
    named = {m.backup_id for m in manifests} | {d.backup_id for d in damaged}
    return Catalog(
        backups=tuple(sorted(manifests, key=lambda m: (m.end_time, m.backup_id))),
        damaged=tuple(sorted(damaged, key=lambda d: d.backup_id)),
        incomplete=tuple(sorted(set(ids_with_objects) - named)),
        verified={backup: verification for backup, verification in (verified or {}).items()
                  if backup in named},
    )


def _verified_json(verification: Verification | None) -> dict[str, str] | None:
    if verification is None:
        return None
    return {"time": verification.time, "result": verification.result}


def catalog_json(catalog: Catalog, recoverable: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON of `backup list`; `recoverable` replaces the backups-only window when the
    store's binlog archive extends it."""
    backups = [
        {"id": m.backup_id, "gtid": m.gtid, "start_time": m.start_time,
         "end_time": m.end_time, "size": m.size, "parts": len(m.parts), "set": m.set_name,
         "flavor": m.flavor, "server_version": m.server_version,
         "compression": m.compression, "encrypted": bool(m.key_id),
         "verified": _verified_json(catalog.verified.get(m.backup_id))}
        for m in catalog.backups
    ]
    ends = [m.end_time for m in catalog.backups]
    return {
        "backups": backups,
        "recoverable": recoverable or {"from": ends[0] if ends else None,
                                       "to": ends[-1] if ends else None, "continuous": False},
        "damaged": [{"id": d.backup_id, "reason": d.reason} for d in catalog.damaged],
        "incomplete": list(catalog.incomplete),
    }


def recoverable(catalog: Catalog, records: Sequence[SegmentRecord],
                archive_error: str = "") -> dict[str, Any]:
    """The window the backups and the store's binlog archive give together (`to`: the commit
    time of the last archived transaction reachable from a backup), as `backup list --json`
    and the metrics show it; `archive_error` names an archive that could not be read (its
    `records` then empty: the backups' own points stand)."""
    # MariaDB's GTIDs only (the archive's and a recovery's): a MySQL backup's own point is
    # still in `from`/`to` through the backups-only window.
    mariadb = [BaseBackup(m.backup_id, m.gtid, m.end_time)
               for m in catalog.backups if m.flavor == "mariadb"]
    if len(mariadb) != len(catalog.backups):
        ends = sorted(m.end_time for m in catalog.backups)
        return {"from": ends[0], "to": ends[-1], "continuous": False,
                "archived_segments": len(records)}
    span = recoverable_span(mariadb, records)
    window: dict[str, Any] = {
        "from": None if span.start is None else span.start.isoformat(),
        "to": None if span.end is None else span.end.isoformat(),
        "continuous": span.continuous,
        "archived_segments": len(records),
    }
    if archive_error:
        window["archive_error"] = archive_error
    return window


def catalog_table(catalog: Catalog) -> list[str]:
    lines = [f"{'ID':<24} {'END (UTC)':<26} {'GTID':<24} {'SIZE':>12} {'PARTS':>5} VERIFIED"]
    for m in catalog.backups:
        last = catalog.verified.get(m.backup_id)
        verified = f"{last.result} {last.time}" if last else "never"
        lines.append(f"{m.backup_id:<24} {m.end_time:<26} {m.gtid:<24} {m.size:>12} "
                     f"{len(m.parts):>5} {verified}")
    lines += [f"{d.backup_id:<24} DAMAGED: {d.reason}" for d in catalog.damaged]
    lines += [f"{backup:<24} incomplete (no manifest: running or killed)"
              for backup in catalog.incomplete]
    if not catalog.backups:
        lines.append("no backups")
    return lines
