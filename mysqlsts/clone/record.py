"""Reading the clone record a completed clone left in the data dir (the sidecar's input)."""

from __future__ import annotations

from pathlib import Path

from mysqlsts.core.clone_record import CloneRecord
from mysqlsts.core.datadir import CLONE_RECORD
from mysqlsts.errors import CloneError


def read_clone_record(data_dir: Path) -> CloneRecord | None:
    """The record, or None when this data dir was not made by a clone (e.g. ordinal 0)."""
    path = data_dir / CLONE_RECORD
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CloneError(f"cannot read clone record {path}: {exc.strerror}") from exc
    try:
        return CloneRecord.from_json(text)
    except ValueError as exc:
        raise CloneError(f"clone record {path} is unreadable: {exc}") from exc
