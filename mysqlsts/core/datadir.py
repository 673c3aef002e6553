"""What a data directory holds, decided from its entry names alone.

A clone or bootstrap writes `IN_PROGRESS` before it puts anything into the data dir and removes
it only after the last byte is in place, so a data dir with the marker is never mistaken for a
finished one, whatever instant the writer was killed at.
"""

from __future__ import annotations

import enum
from collections.abc import Collection

from mysqlsts.errors import ConfigError

IN_PROGRESS = ".mysqlsts-in-progress"
STAGING = ".mysqlsts-staging"
# A point-in-time recovery's relay log files, written as the archive is read, before the base
# backup is restored (clone/point_in_time.py): on the data volume, as the staging dir is (on
# Kubernetes the data dir is the volume's subdirectory; its parent is the container's own
# disk). Removed before the marker goes; one a killed recovery left is removed by the next
# fill of any kind (adapters.datadir's fill_data_dir).
PITR_RELAY = ".mysqlsts-pitr-relay"
# How many clones into this volume failed after the donor was authenticated. Kept across the
# wipe of an interrupted clone (the sidecar exports it once a clone succeeds).
CLONE_FAILURES = ".mysqlsts-clone-failures"
# The system schema: the server (and the official images' entrypoints) treat a data dir holding
# it as initialised. Moved into place last, so its presence means everything else is there.
SYSTEM_SCHEMA = "mysql"
# Entries a fresh volume may carry that are not ours to judge or remove.
FOREIGN_HARMLESS = frozenset({"lost+found"})


class DataDirState(enum.StrEnum):
    EMPTY = "empty"
    INITIALIZED = "initialized"
    INCOMPLETE = "incomplete"  # our own unfinished work: safe to wipe and redo
    UNKNOWN = "unknown"  # someone else's files: never ours to delete


# atomic_write's temp files for our markers: a kill between create and rename leaves one.
OWN_TEMP_FILES = frozenset({f".{IN_PROGRESS}.tmp", f".{CLONE_FAILURES}.tmp"})


def classify(entries: Collection[str]) -> DataDirState:
    if IN_PROGRESS in entries:
        return DataDirState.INCOMPLETE
    if SYSTEM_SCHEMA in entries:
        return DataDirState.INITIALIZED
    if set(entries) - FOREIGN_HARMLESS - OWN_TEMP_FILES - {STAGING, PITR_RELAY,
                                                              CLONE_FAILURES}:
        return DataDirState.UNKNOWN
    return DataDirState.EMPTY


class Fill(enum.StrEnum):
    """What a writer that fills data dirs (a clone, a bootstrap) does with one."""

    SKIP = "skip"  # it already holds a server's data
    FILL = "fill"
    REDO = "redo"  # our own interrupted fill: wipe it, then fill


def plan_fill(state: DataDirState, verb: str) -> Fill:
    """The one switch on a data dir's state; ConfigError for someone else's files, which are
    never ours to delete. `verb` names the writer in that error ("clone", "initialise")."""
    if state is DataDirState.INITIALIZED:
        return Fill.SKIP
    if state is DataDirState.INCOMPLETE:
        return Fill.REDO
    if state is DataDirState.UNKNOWN:
        raise ConfigError(
            "data dir holds files that are neither a server's data nor our own interrupted "
            f"work; refusing to {verb} over them"
        )
    return Fill.FILL


def parse_failure_count(text: str) -> int:
    """The counter file's content; anything unreadable counts as no failures."""
    try:
        return max(int(text.strip() or 0), 0)
    except ValueError:
        return 0


def move_order(entries: Collection[str]) -> list[str]:
    """Staged entries in the order to move them: the system schema last."""
    return sorted(entries, key=lambda name: (name == SYSTEM_SCHEMA, name))
