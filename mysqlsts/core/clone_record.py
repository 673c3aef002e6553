"""The record a completed clone leaves in the data dir (`mysqlsts-clone.json`): its name, its
content and its JSON form. Reading and writing the file: `mysqlsts.adapters.datadir`.

The sidecar reads it to configure replication: `gtid` (MariaDB: for `SET GLOBAL
gtid_slave_pos`; MySQL: the GTID set already applied) and, for non-GTID set-ups,
`binlog_file`/`binlog_position`, both relative to the primary, whichever pod donated.
`donor_binlog` keeps the donor's own binlog position for diagnosis.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mysqlsts.core.backupinfo import BackupCoordinates
from mysqlsts.core.coordinates import Coordinates
from mysqlsts.errors import CloneError

CLONE_RECORD = "mysqlsts-clone.json"
RECORD_VERSION = 1


@dataclass(frozen=True)
class DonorAddress:
    """A pod that serves (or served) a clone: its ordinal and where its donor listens."""

    ordinal: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class CloneRecord:
    donor: DonorAddress
    flavor: str
    # Where the new replica starts, in the primary's binlog.
    coordinates: Coordinates
    # "slave_info": the donor was a replica and these are its primary's coordinates;
    # "binlog_info": the donor's own binlog (the donor was the primary).
    coordinates_origin: str
    donor_binlog: Coordinates | None
    bytes: int
    duration_seconds: float
    completed_at: str  # ISO 8601, UTC

    def summary(self) -> dict[str, Any]:
        """The fields the sidecar's /status shows."""
        return {
            "donor": str(self.donor), "bytes": self.bytes, "seconds": self.duration_seconds,
            **_flat(self.coordinates),
        }

    def to_json(self) -> str:
        own = self.donor_binlog
        body: dict[str, Any] = {
            "version": RECORD_VERSION,
            "donor": {"ordinal": self.donor.ordinal, "host": self.donor.host,
                      "port": self.donor.port},
            "flavor": self.flavor,
            **_flat(self.coordinates),
            "coordinates_origin": self.coordinates_origin,
            "donor_binlog": None if own is None else {
                "gtid": own.gtid, "file": own.binlog_file, "position": own.binlog_position,
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
                donor=DonorAddress(_int(donor["ordinal"]), _str(donor["host"]),
                                   _int(donor["port"])),
                flavor=_str(body["flavor"]),
                coordinates=_coordinates(body.get("gtid"), body.get("binlog_file"),
                                         body.get("binlog_position")),
                coordinates_origin=_str(body["coordinates_origin"]),
                donor_binlog=None if own is None else _coordinates(
                    own.get("gtid"), own.get("file"), own.get("position")),
                bytes=_int(body["bytes"]),
                duration_seconds=float(body["duration_seconds"]),
                completed_at=_str(body["completed_at"]),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a clone record: {exc!r}") from exc


def record_clone(
    backup: BackupCoordinates, donor: DonorAddress, flavor: str, received_bytes: int,
    duration_seconds: float, completed_at: str,
) -> CloneRecord:
    """The record of a clone whose backup carried `backup`; CloneError when it carries no
    position a replica could start from."""
    position = backup.for_replication
    if position is None or position.empty:
        raise CloneError(
            f"the backup from {donor} carries no replication coordinates "
            "(is the binary log enabled on the donor?)"
        )
    return CloneRecord(
        donor=donor, flavor=flavor, coordinates=position, coordinates_origin=backup.origin,
        donor_binlog=backup.donor_binlog, bytes=received_bytes,
        duration_seconds=duration_seconds, completed_at=completed_at,
    )


def _flat(coordinates: Coordinates) -> dict[str, Any]:
    return {"gtid": coordinates.gtid, "binlog_file": coordinates.binlog_file,
            "binlog_position": coordinates.binlog_position}


def _coordinates(gtid: Any, binlog_file: Any, binlog_position: Any) -> Coordinates:
    return Coordinates(_opt_str(gtid), _opt_str(binlog_file), _opt_int(binlog_position))


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
