"""A point in the binary log history of a replicated set: the one coordinates type.

The backup tool reports it, the clone record keeps it, and the sidecar starts replication from
it. GTID, or binary log file and position, or both; which server's log it names is said by
whoever holds the value (the clone record keeps the primary's and the donor's apart).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Coordinates:
    gtid: str | None = None
    binlog_file: str | None = None
    binlog_position: int | None = None

    @property
    def empty(self) -> bool:
        return self.gtid is None and self.binlog_file is None
