"""What a store's archive holds, as lines for a person: per domain its span, how much of the
index its checkpoints held, then every break and (when asked) every segment (every chunk of a
chunked one) that does not match its record."""

from __future__ import annotations

from dataclasses import dataclass

from mysqlsts.core.backup_parts import BackupKeys
from mysqlsts.core.binlog_index import breaks, spans
from mysqlsts.errors import MysqlstsError
from mysqlsts.store.base import ObjectStore
from mysqlsts.store.binlog_archive import load_index, read_chunks, read_segment


@dataclass(frozen=True)
class Report:
    lines: tuple[str, ...]
    problems: int


def inspect_archive(store: ObjectStore, keys: BackupKeys | None, *, verify: bool) -> Report:
    index = load_index(store, keys)
    records = index.records
    lines = [str(span) for span in spans(records)] or [f"no archive in {store.describe()}"]
    if index.chain:
        names = ", ".join(c.name for c in index.chain)
        lines.append(f"index: {len(records)} records, {index.covered} of them read from "
                     f"checkpoint{'s' if len(index.chain) > 1 else ''} {names}")
    problems = [str(found) for found in breaks(records)]
    if verify:
        for record in records:
            try:
                if record.chunks:  # each chunk checked as it is read, one held at a time
                    for _ in read_chunks(store, record, keys):
                        pass
                else:
                    read_segment(store, record, keys)
            except MysqlstsError as error:  # missing, corrupt, or sealed with another key
                problems.append(f"segment {record.segment}: {error}")
    return Report(tuple(lines + problems), len(problems))
