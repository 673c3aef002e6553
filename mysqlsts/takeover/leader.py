"""Leader election on a coordination.k8s.io Lease, as client-go does it.

Expiry is judged on this process's monotonic clock from the moment it saw the Lease's record
change, never by comparing its clock with the holder's renewTime (another machine's clock). The
holder counts itself leader only until its renew deadline (shorter than the Lease duration)
after its last successful renewal, so it stops acting before anyone else may start. The adapter
writes with the record's resourceVersion, so two candidates cannot both win. Pure: the
monotonic clock is passed in.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from mysqlsts.takeover.model import HistoryEntry


@dataclass(frozen=True)
class LeaseRecord:
    holder: str | None
    renewed: datetime | None  # the holder's stamp: compared for change, never with a clock
    duration: timedelta
    transitions: int
    resource_version: str
    history: tuple[HistoryEntry, ...] = ()  # our takeovers, inherited by every new leader


class Leadership(enum.StrEnum):
    CREATE = "create"  # no Lease yet: create it holding it
    RENEW = "renew"  # ours: renew it
    ACQUIRE = "acquire"  # someone else's, expired or released: take it
    STANDBY = "standby"  # someone else holds it


class Elector:
    def __init__(self, identity: str, renew_deadline: timedelta) -> None:
        self.identity = identity
        self.renew_deadline = renew_deadline
        self._seen: tuple[str | None, datetime | None, str] | None = None
        self._seen_at = 0.0
        self._renewed_at: float | None = None

    def step(self, record: LeaseRecord | None, monotonic: float) -> Leadership:
        """What to do with the Lease as read now."""
        if record is None:
            return Leadership.CREATE
        key = (record.holder, record.renewed, record.resource_version)
        if key != self._seen:
            self._seen, self._seen_at = key, monotonic
        if record.holder == self.identity:
            return Leadership.RENEW
        if not record.holder or monotonic - self._seen_at >= record.duration.total_seconds():
            return Leadership.ACQUIRE
        return Leadership.STANDBY

    def renewed(self, monotonic: float) -> None:
        self._renewed_at = monotonic

    def lost(self) -> None:
        self._renewed_at = None

    def leading(self, monotonic: float) -> bool:
        """Ours to act on: renewed less than the renew deadline ago."""
        return (self._renewed_at is not None
                and monotonic - self._renewed_at < self.renew_deadline.total_seconds())
