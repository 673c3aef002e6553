"""The record a completed clone leaves in the data dir (`mysqlsts-clone.json`).

The sidecar reads it to configure replication: `gtid` (MariaDB: for `SET GLOBAL
gtid_slave_pos`; MySQL: the GTID set already applied) and, for non-GTID set-ups,
`binlog_file`/`binlog_position` — both relative to the primary, whichever pod donated.
`donor_binlog` keeps the donor's own binlog position for diagnosis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mysqlsts.core.backupinfo import BinlogCoordinates

RECORD_VERSION = 1


@dataclass(frozen=True)
class DonorRef:
    ordinal: int
    host: str
    port: int


@dataclass(frozen=True)
class CloneRecord:
    donor: DonorRef
    flavor: str
    gtid: str | None
    binlog_file: str | None
    binlog_position: int | None
    # "slave_info": the donor was a replica and these are its primary's coordinates;
    # "binlog_info": the donor's own binlog (the donor was the primary).
    coordinates_origin: str
    donor_binlog: BinlogCoordinates | None
    bytes: int
    duration_seconds: float
    completed_at: str  # ISO 8601, UTC

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "version": RECORD_VERSION,
            "donor": {"ordinal": self.donor.ordinal, "host": self.donor.host,
                      "port": self.donor.port},
            "flavor": self.flavor,
            "gtid": self.gtid,
            "binlog_file": self.binlog_file,
            "binlog_position": self.binlog_position,
            "coordinates_origin": self.coordinates_origin,
            "donor_binlog": None if self.donor_binlog is None else {
                "gtid": self.donor_binlog.gtid, "file": self.donor_binlog.file,
                "position": self.donor_binlog.position,
            },
            "bytes": self.bytes,
            "duration_seconds": round(self.duration_seconds, 3),
            "completed_at": self.completed_at,
        }
        return json.dumps(body, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CloneRecord:
        """Parse a record; ValueError (with the reason) when it is not one."""
        try:
            body = json.loads(text)
            donor = body["donor"]
            own = body.get("donor_binlog")
            return cls(
                donor=DonorRef(_int(donor["ordinal"]), _str(donor["host"]),
                               _int(donor["port"])),
                flavor=_str(body["flavor"]),
                gtid=_opt_str(body.get("gtid")),
                binlog_file=_opt_str(body.get("binlog_file")),
                binlog_position=_opt_int(body.get("binlog_position")),
                coordinates_origin=_str(body["coordinates_origin"]),
                donor_binlog=None if own is None else BinlogCoordinates(
                    gtid=_opt_str(own.get("gtid")), file=_opt_str(own.get("file")),
                    position=_opt_int(own.get("position")),
                ),
                bytes=_int(body["bytes"]),
                duration_seconds=float(body["duration_seconds"]),
                completed_at=_str(body["completed_at"]),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a clone record: {exc!r}") from exc


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else _int(value)
