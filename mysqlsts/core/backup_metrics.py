"""What a store's backups tell a scrape (pure): the figures the sidecar exports from its
periodic read of the catalog (sidecar/backup_catalog.py), as Unix times and counts.

The store is the truth: a backup exists once its manifest does, a restore drill once its
verdict object does, so these figures need no pushgateway and survive any pod. `None` is a
figure the store cannot give yet (no backup, no drill): exported as no sample, never as 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mysqlsts.core.backup_catalog import Catalog, catalog_json
from mysqlsts.core.backup_verify import OK


@dataclass(frozen=True)
class BackupFigures:
    count: int  # backups with a valid manifest
    damaged: int  # manifests that did not parse
    last_end: float | None  # the newest backup's end time
    last_size: int | None  # and its size in bytes
    last_verification: float | None  # the newest restore drill's time, of any backup
    last_verification_ok: bool | None  # whether that drill passed
    recoverable_from: float | None  # the backups' own window (the archive: its own metric)
    recoverable_to: float | None


def _unix(text: str | None) -> float | None:
    """An ISO-8601 time as Unix time; one without a zone is UTC, as every time here is."""
    if text is None:
        return None
    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def backup_figures(catalog: Catalog) -> BackupFigures:
    newest = catalog.backups[-1] if catalog.backups else None
    # The newest drill; of two in the same second, the failed one (a verdict is never hidden).
    drills = sorted(catalog.verified.values(),
                    key=lambda v: (_unix(v.time) or 0.0, v.result != OK))
    last_drill = drills[-1] if drills else None
    window = catalog_json(catalog)["recoverable"]
    return BackupFigures(
        count=len(catalog.backups),
        damaged=len(catalog.damaged),
        last_end=_unix(newest.end_time) if newest else None,
        last_size=newest.size if newest else None,
        last_verification=_unix(last_drill.time) if last_drill else None,
        last_verification_ok=last_drill.result == OK if last_drill else None,
        recoverable_from=_unix(window["from"]),
        recoverable_to=_unix(window["to"]),
    )
