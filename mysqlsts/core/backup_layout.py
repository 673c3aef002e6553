"""Where backups and the binlog archive live in a store, and how a backup is named (pure).

    backups/<id>/part-000001 ...   the backup's bytes, cut into parts, each written once
    backups/<id>/manifest.json     written last, create-only: the backup exists once it does
    binlog/segments/...            the continuous binlog archive (issue 18), beside the backups
    binlog/index/...               its GTID and commit-time index (issue 18)
    binlog/checkpoints/...         many index records in one object (core/binlog_checkpoint.py)
    binlog/lock/<generation>       the archiver's lease: one archiver writes at a time

An id is the backup's start time in UTC (so ids sort by time, in listings too) and a random
suffix (so two backups started in the same second never share a name). Names carry no secret:
no host name, password or key, only the time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

BACKUPS = "backups/"
MANIFEST = "manifest.json"
BINLOG_SEGMENTS = "binlog/segments/"  # reserved for the archive (issue 18)
BINLOG_INDEX = "binlog/index/"  # reserved for the archive's index (issue 18)
BINLOG_CHECKPOINTS = "binlog/checkpoints/"  # the index compacted: a start reads one object
BINLOG_LOCK = "binlog/lock/"  # the archiver's lease, one create-only object per generation

_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


def backup_id(start: datetime, suffix: str) -> str:
    """The id of a backup started at `start`; `suffix` is 6 random hex digits."""
    if not re.fullmatch(r"[0-9a-f]{6}", suffix):
        raise ValueError(f"bad backup id suffix {suffix!r}")
    return start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + suffix


def is_backup_id(text: str) -> bool:
    return bool(_ID.match(text))


def backup_started(backup: str) -> datetime | None:
    """When a backup started, from its id; None when the id names no real time (written by
    hand or by something else: never taken as old enough to remove)."""
    if not is_backup_id(backup):
        return None
    try:
        return datetime.strptime(backup[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def backup_prefix(backup: str) -> str:
    return f"{BACKUPS}{backup}/"


def part_name(backup: str, number: int) -> str:
    """Part `number` (from 1) of a backup; six digits sort in order up to 999999 parts."""
    if not 1 <= number <= 999_999:
        raise ValueError(f"part number {number} out of range")
    return f"{backup_prefix(backup)}part-{number:06d}"


def manifest_name(backup: str) -> str:
    return backup_prefix(backup) + MANIFEST


def backup_of(name: str) -> str | None:
    """The backup id an object name belongs to, or None for names outside backups/."""
    if not name.startswith(BACKUPS):
        return None
    first = name[len(BACKUPS):].split("/", 1)[0]
    return first if is_backup_id(first) else None
