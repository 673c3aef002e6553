"""Leader election on a coordination.k8s.io Lease, decided purely from the Lease's record.

Only the holder acts; a standby takes over once the holder has not renewed for the Lease's
duration. The adapter writes with the record's resourceVersion, so two candidates that decide
to acquire at once cannot both succeed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LeaseRecord:
    holder: str | None
    renewed: datetime | None
    duration: timedelta
    transitions: int
    resource_version: str


class Leadership(enum.StrEnum):
    CREATE = "create"  # no Lease yet: create it holding it
    RENEW = "renew"  # ours: renew it
    ACQUIRE = "acquire"  # someone else's, expired or released: take it
    STANDBY = "standby"  # someone else holds it


def leadership(record: LeaseRecord | None, me: str, now: datetime) -> Leadership:
    if record is None:
        return Leadership.CREATE
    if record.holder == me:
        return Leadership.RENEW
    if not record.holder or record.renewed is None or now - record.renewed >= record.duration:
        return Leadership.ACQUIRE
    return Leadership.STANDBY
