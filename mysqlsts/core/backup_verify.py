"""The restore drill's verdict on a backup, and where it is kept (pure).

`mysqlsts backup verify` restores a backup into a scratch server and asks it questions; the
answers are judged here: which tables to check, whether a `CHECK TABLE` result is a failure,
whether the server stands at the backup's GTID, whether the heartbeat row is one the backup can
hold. The verdict is written beside the backup, create-only, once per drill:

    backups/<id>/verify-<UTC time>-<ok|failed>.json

The time and result are in the name, so `backup list` knows each backup's last verification
from the one listing it reads anyway; the object holds the details (reason, duration, tables and
their checksums, the GTID). A verdict is never a part: the manifest stays the commit marker.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mysqlsts.core.backup_layout import BACKUPS, backup_prefix, is_backup_id
from mysqlsts.core.gtid import mariadb_applied, mariadb_same_position

OK = "ok"
FAILED = "failed"
# Schemas with no data of their own: views over the server's state. `mysql` is checked: its
# accounts, GTID position and time zones are what a restored server starts from.
NOT_CHECKED = frozenset({"information_schema", "performance_schema", "sys"})
_STATUS_OK = frozenset({"ok", "table is already up to date"})
_NAME = re.compile(r"^verify-(\d{8}T\d{6}Z)-(ok|failed)\.json$")


@dataclass(frozen=True)
class Verification:
    """A backup's last drill, as its object's name tells it."""

    time: str  # ISO-8601 UTC, to the second
    result: str  # OK or FAILED


@dataclass(frozen=True)
class CheckedTable:
    name: str  # schema.table
    checksum: int | None  # CHECKSUM TABLE; None when the table failed its check
    failure: str = ""  # what CHECK TABLE said was wrong, "" when it passed


@dataclass(frozen=True)
class Verdict:
    backup_id: str
    result: str
    reason: str  # "" when verified
    started: datetime
    seconds: float
    gtid: str  # the restored server's position ("" when it never got that far)
    tables: tuple[CheckedTable, ...] = field(default_factory=tuple)
    heartbeat: str = ""  # the heartbeat row's GTID, "" without one


def record_name(backup: str, at: datetime, result: str) -> str:
    if result not in (OK, FAILED):
        raise ValueError(f"bad verification result {result!r}")
    return (f"{backup_prefix(backup)}verify-{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-"
            f"{result}.json")


def parse_record_name(name: str) -> tuple[str, Verification] | None:
    """(backup id, verification) for a verdict's object name, None for any other name."""
    parts = name.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != BACKUPS or not is_backup_id(parts[1]):
        return None
    found = _NAME.match(parts[2])
    if found is None:
        return None
    try:
        at = datetime.strptime(found.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return parts[1], Verification(at.isoformat(), found.group(2))


def latest(names: Iterable[str]) -> dict[str, Verification]:
    """Each backup's newest verification among `names` (any object names)."""
    found: dict[str, Verification] = {}
    for name in names:
        parsed = parse_record_name(name)
        if parsed is None:
            continue
        backup, verification = parsed
        if backup not in found or found[backup].time <= verification.time:
            found[backup] = verification
    return found


def render_verdict(verdict: Verdict) -> bytes:
    return json.dumps({
        "backup_id": verdict.backup_id, "result": verdict.result, "reason": verdict.reason,
        "started": verdict.started.astimezone(UTC).isoformat(timespec="seconds"),
        "duration_seconds": round(verdict.seconds, 3), "gtid": verdict.gtid,
        "heartbeat_gtid": verdict.heartbeat,
        "tables": [{"name": t.name, "checksum": t.checksum, **({"failure": t.failure}
                                                                if t.failure else {})}
                   for t in verdict.tables],
    }, indent=1).encode() + b"\n"


def tables_to_check(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """`schema.table` of every base table in information_schema.TABLES rows (TABLE_SCHEMA,
    TABLE_NAME, TABLE_TYPE), but those of the schemas that hold no data."""
    return sorted(f"{row['TABLE_SCHEMA']}.{row['TABLE_NAME']}" for row in rows
                  if row["TABLE_TYPE"] == "BASE TABLE"
                  and str(row["TABLE_SCHEMA"]).lower() not in NOT_CHECKED)


def check_failure(rows: Sequence[Mapping[str, Any]]) -> str | None:
    """What is wrong with a table, from its `CHECK TABLE` rows (Msg_type, Msg_text); None when
    it passed. An error row fails it, and so does a status other than OK; notes (an engine that
    cannot check) and warnings with an OK status do not."""
    def said(kind: str) -> list[str]:
        return [" ".join(str(row["Msg_text"]).split()) for row in rows
                if str(row["Msg_type"]).lower() == kind]

    errors, status = said("error"), said("status")
    bad_status = [text for text in status if text.lower() not in _STATUS_OK]
    if errors or bad_status:
        return "; ".join(errors + bad_status)
    return None


def gtid_problem(manifest_gtid: str, startup_position: str, restored_position: str) -> str | None:
    """Why the restored server does not stand at the backup's GTID, or None.

    `startup_position` is the server's own position as it started on the restored data
    (`gtid_slave_pos`, from its mysql.gtid_slave_pos table): it may lag the backup (a donor
    that was the primary, or a restored one) but never lead it. `restored_position` is its
    `gtid_current_pos` once the restore's recorded position was applied, as a replica's
    set-up applies it."""
    if not mariadb_applied(startup_position, manifest_gtid):
        return (f"the restored data's own GTID position {startup_position} is ahead of the "
                f"backup's {manifest_gtid}")
    if not mariadb_same_position(restored_position, manifest_gtid):
        return (f"the restored server stands at GTID {restored_position or '(none)'}, the "
                f"backup's manifest says {manifest_gtid}")
    return None


def heartbeat_problem(manifest_gtid: str, heartbeat_gtid: str) -> str | None:
    """Why the heartbeat row cannot be in a backup at `manifest_gtid`, or None: the row holds
    the primary's executed GTIDs when it was written, so the backup must have applied them."""
    if heartbeat_gtid and not mariadb_applied(heartbeat_gtid, manifest_gtid):
        return (f"the heartbeat row was written after GTID {heartbeat_gtid}, which the "
                f"backup's position {manifest_gtid} does not include")
    return None
