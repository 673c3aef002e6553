"""Which base backups to keep: a recovery window and a minimum count, over manifests (pure).

Never by object age or bucket lifecycle rules (wal-g#1869: those broke archives). A backup is
a point the set can be restored to; the window `[now - window, now]` must stay restorable, so
the newest backup that ended at or before the window's start (the base its oldest point
needs) is kept with every backup inside the window, and the newest `minimum` are kept
whatever their age. Issue 18 extends this to binlog segments (core/segment_retention.py): the
oldest kept base's position is where the segments that must stay begin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Retained:
    backup_id: str
    end: datetime  # when the backup's data is from (its end time)


@dataclass(frozen=True)
class RetentionPlan:
    keep: tuple[str, ...]
    delete: tuple[str, ...]
    oldest_needed: str | None  # the base the window's oldest point needs


def plan_retention(backups: Sequence[Retained], now: datetime, window: timedelta,
                   minimum: int) -> RetentionPlan:
    """Split `backups` (complete ones: each with a valid manifest) into kept and deleted."""
    if minimum < 1:
        raise ValueError("keep at least one backup")
    ordered = sorted(backups, key=lambda b: (b.end, b.backup_id))
    start = now - window
    keep = {b.backup_id for b in ordered[-minimum:]}
    keep |= {b.backup_id for b in ordered if b.end >= start}
    before = [b for b in ordered if b.end <= start]
    oldest_needed = before[-1].backup_id if before else None
    if oldest_needed is not None:
        keep.add(oldest_needed)
    return RetentionPlan(
        keep=tuple(b.backup_id for b in ordered if b.backup_id in keep),
        delete=tuple(b.backup_id for b in ordered if b.backup_id not in keep),
        oldest_needed=oldest_needed,
    )


def parse_window(text: str) -> timedelta:
    """`7d`, `36h`, `90m` as a timedelta; ValueError for anything else."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise ValueError(f"retention window {text!r}: use a positive number with d, h or m "
                         "(e.g. 7d)")
    return timedelta(**{units[unit]: int(number)})
