"""Reading and writing the local set's records (`records`) at their places in the set's
layout (`spec`); writes are atomic, so a reader never sees half a file."""

from __future__ import annotations

from mysqlsts.adapters.fs import atomic_write
from mysqlsts.core.records import RecordError
from mysqlsts.local.records import PodRecord, SupervisorState
from mysqlsts.local.spec import PodPaths, SetLayout


def read_pod_record(paths: PodPaths) -> PodRecord | None:
    """The pod's record; None when it has none (never started) or none that can be read."""
    try:
        return PodRecord.from_json(paths.record.read_bytes(), str(paths.record))
    except (OSError, RecordError):
        return None


def write_pod_record(paths: PodPaths, record: PodRecord) -> None:
    atomic_write(paths.record, record.to_json())


def pod_records(layout: SetLayout) -> dict[int, PodRecord]:
    """Every pod record of the set by ordinal, including pods scaled away."""
    records: dict[int, PodRecord] = {}
    if layout.pods.is_dir():
        for directory in sorted(layout.pods.iterdir()):
            record = read_pod_record(layout.pod(directory.name))
            if record is not None:
                records[record.ordinal] = record
    return records


def read_state(layout: SetLayout) -> SupervisorState | None:
    """The supervisor's last published cycle; None before its first one."""
    try:
        return SupervisorState.from_json(layout.state.read_bytes(), str(layout.state))
    except (OSError, RecordError):
        return None


def write_state(layout: SetLayout, state: SupervisorState) -> None:
    atomic_write(layout.state, state.to_json())
