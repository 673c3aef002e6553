"""Which base backups to keep: a recovery window and a minimum count, over manifests (pure).

Never by object age or bucket lifecycle rules (wal-g#1869: those broke archives). A backup is
a point the set can be restored to; the window `[now - window, now]` must stay restorable, so
the newest backup that ended at or before the window's start (the base its oldest point
needs) is kept with every backup inside the window, and the newest `minimum` are kept
whatever their age (as the drill's verdicts qualify below). Issue 18 extends this to binlog
segments (core/segment_retention.py): the oldest kept base's position is where the segments
that must stay begin.

The restore drill's verdicts count (core/backup_verify.py): a backup whose newest drill failed
is not a recovery point. It does not count toward the minimum and is never the base the
window's oldest point needs; the newest backup at or before the window's start that is not
known bad is that base, kept with every backup after it (failed ones after it included: they
are a person's evidence and cost storage only, and go once a good base ages past them). A
backup never drilled counts as before: unknown is not bad. The newest backup that passed its
drill is always kept (`proven`), so a run of failed drills never removes the last proven one;
a newer pass releases it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from mysqlsts.core.backup_verify import FAILED, OK


@dataclass(frozen=True)
class Retained:
    backup_id: str
    end: datetime  # when the backup's data is from (its end time)
    drilled: str | None = None  # its newest drill's result (OK, FAILED), None: never drilled

    @property
    def bad(self) -> bool:
        return self.drilled == FAILED


@dataclass(frozen=True)
class RetentionPlan:
    keep: tuple[str, ...]
    delete: tuple[str, ...]
    oldest_needed: str | None  # the base the window's oldest point needs
    proven: str | None = None  # the newest backup that passed its drill (always kept)
    failed_kept: tuple[str, ...] = ()  # kept backups whose newest drill failed


def plan_retention(backups: Sequence[Retained], now: datetime, window: timedelta,
                   minimum: int) -> RetentionPlan:
    """Split `backups` (complete ones: each with a valid manifest) into kept and deleted:
    the newest `minimum` not known bad, the newest not known bad that ended at or before the
    window's start (the base its oldest point needs) with every backup after it, and the
    newest that passed its drill."""
    if minimum < 1:
        raise ValueError("keep at least one backup")
    ordered = sorted(backups, key=lambda b: (b.end, b.backup_id))
    good = [b for b in ordered if not b.bad]
    start = now - window
    keep = {b.backup_id for b in good[-minimum:]}
    before = [b for b in good if b.end <= start]
    base = before[-1] if before else None
    since = min((start, ""), (base.end, base.backup_id) if base else (start, ""))
    keep |= {b.backup_id for b in ordered if (b.end, b.backup_id) >= since}
    passed = [b for b in ordered if b.drilled == OK]
    proven = passed[-1].backup_id if passed else None
    if proven is not None:
        keep.add(proven)
    return RetentionPlan(
        keep=tuple(b.backup_id for b in ordered if b.backup_id in keep),
        delete=tuple(b.backup_id for b in ordered if b.backup_id not in keep),
        oldest_needed=base.backup_id if base else None,
        proven=proven,
        failed_kept=tuple(b.backup_id for b in ordered if b.bad and b.backup_id in keep),
    )


def parse_window(text: str) -> timedelta:
    """`7d`, `36h`, `90m` as a timedelta; ValueError for anything else."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise ValueError(f"retention window {text!r}: use a positive number with d, h or m "
                         "(e.g. 7d)")
    return timedelta(**{units[unit]: int(number)})
