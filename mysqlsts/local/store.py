"""Reading and writing the local set's records (`records`) at their places in the set's
layout (`spec`). Writes are atomic, so a reader never sees half a file; every read goes through
`read_back`, so a damaged file is a warning (a record) or one clear error (the spec), never a
traceback or a dead supervisor."""

from __future__ import annotations

import logging

from mysqlsts.adapters.fs import atomic_write, read_back
from mysqlsts.core.records import RecordError, parse_count
from mysqlsts.errors import ConfigError
from mysqlsts.local.records import PodRecord, SupervisorState
from mysqlsts.local.spec import PodPaths, SetLayout, SetSpec

log = logging.getLogger(__name__)


def load_spec(layout: SetLayout) -> SetSpec:
    """The set's spec; one ConfigError when DIR is no set or its spec.json is damaged."""
    spec = read_back(layout.spec, SetSpec.from_json)
    if spec is None:
        raise ConfigError(f"{layout.root} is not a local set (no spec.json); run `local up`")
    return spec


def write_spec(layout: SetLayout, spec: SetSpec) -> None:
    atomic_write(layout.spec, spec.to_json())


def read_pod_record(paths: PodPaths) -> PodRecord | None:
    """The pod's record; None when it has none (never started) or a damaged one (a warning:
    the pod process rewrites it at its next phase)."""
    try:
        return read_back(paths.record, PodRecord.from_json)
    except RecordError as exc:
        log.warning("ignoring a damaged pod record: %s", exc)
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
    """The supervisor's last published cycle; None before its first one, or when damaged (a
    warning: the supervisor rewrites it every cycle)."""
    try:
        return read_back(layout.state, SupervisorState.from_json)
    except RecordError as exc:
        log.warning("ignoring a damaged supervisor state: %s", exc)
        return None


def write_state(layout: SetLayout, state: SupervisorState) -> None:
    atomic_write(layout.state, state.to_json())


def read_supervisor_pid(layout: SetLayout) -> int | None:
    """The pid the running supervisor wrote; None while it is not (yet) written or damaged."""
    try:
        return read_back(layout.supervisor_pid, parse_count)
    except RecordError:
        return None  # being written: the caller retries
