"""What a store's backups tell a scrape (pure): the figures the sidecar exports from its
periodic read of the catalog (sidecar/backup_catalog.py), as Unix times and counts.

The store is the truth: a backup exists once its manifest does, a restore drill once its
verdict object does, so these figures need no pushgateway and survive any pod. `None` is a
figure the store cannot give yet (no backup, no drill): exported as no sample, never as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mysqlsts.core.backup_catalog import Catalog, catalog_json
from mysqlsts.core.backup_layout import BACKUPS, BINLOG_SEGMENTS
from mysqlsts.core.backup_verify import OK

# What the store holds, by kind (`mysqlsts_store_bytes{kind}`): every object under the
# kind's prefix, as the store bills it (a base backup's parts, manifest and drill verdicts, a
# killed backup's parts until they are removed; the archive's segments).
STORE_KINDS = {"base_backups": BACKUPS, "binlog_segments": BINLOG_SEGMENTS}


def store_kind(name: str) -> str | None:
    """The kind an object of the store counts as, or None (the archive's index and lock)."""
    for kind, prefix in STORE_KINDS.items():
        if name.startswith(prefix):
            return kind
    return None


@dataclass(frozen=True)
class StoreContents:
    """One read of the store: its catalog, the bytes under each kind's prefix, and the
    recoverable window with the archive (core.backup_catalog.recoverable; None: the backups'
    own points)."""

    catalog: Catalog
    bytes_by_kind: Mapping[str, int] = field(default_factory=dict)
    recoverable: dict[str, Any] | None = None


@dataclass(frozen=True)
class BackupFigures:
    count: int  # backups with a valid manifest
    damaged: int  # manifests that did not parse
    last_end: float | None  # the newest backup's end time
    last_size: int | None  # and its size in bytes
    last_verification: float | None  # the newest restore drill's time, of any backup
    last_verification_ok: bool | None  # whether that drill passed
    # The window `backup list` reports: the oldest backup's end, and the commit time of the
    # last archived transaction reachable from a backup (a backup's own end without one).
    recoverable_from: float | None
    recoverable_to: float | None
    # The newest backup's run, from its manifest: end - start (the donor's wait included),
    # its parts, and its stored bytes per second of that (None for a run of no measurable time).
    last_duration: float | None = None
    last_parts: int | None = None
    last_throughput: float | None = None
    # Bytes in the store by kind (STORE_KINDS), every kind present, 0 when it holds none.
    store_bytes: Mapping[str, int] = field(default_factory=dict)


def _unix(text: str | None) -> float | None:
    """An ISO-8601 time as Unix time; one without a zone is UTC, as every time here is."""
    if text is None:
        return None
    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def backup_figures(catalog: Catalog, bytes_by_kind: Mapping[str, int] | None = None,
                   recoverable: dict[str, Any] | None = None) -> BackupFigures:
    newest = catalog.backups[-1] if catalog.backups else None
    duration = None
    if newest is not None:
        started, ended = _unix(newest.start_time), _unix(newest.end_time)
        duration = None if started is None or ended is None else max(ended - started, 0.0)
    # The newest drill; of two in the same second, the failed one (a verdict is never hidden).
    drills = sorted(catalog.verified.values(),
                    key=lambda v: (_unix(v.time) or 0.0, v.result != OK))
    last_drill = drills[-1] if drills else None
    window = catalog_json(catalog, recoverable)["recoverable"]
    return BackupFigures(
        count=len(catalog.backups),
        damaged=len(catalog.damaged),
        last_end=_unix(newest.end_time) if newest else None,
        last_size=newest.size if newest else None,
        last_verification=_unix(last_drill.time) if last_drill else None,
        last_verification_ok=last_drill.result == OK if last_drill else None,
        recoverable_from=_unix(window["from"]),
        recoverable_to=_unix(window["to"]),
        last_duration=duration,
        last_parts=len(newest.parts) if newest else None,
        last_throughput=newest.size / duration if newest and duration else None,
        store_bytes={kind: (bytes_by_kind or {}).get(kind, 0) for kind in STORE_KINDS},
    )
