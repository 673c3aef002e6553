"""The status table: pure functions of what the API server said about each pod and what its
sidecar's /status document said (or why it could not be read).

No pod is ever dropped: a pod whose document could not be fetched is a row with role `unknown`
and the reason in `last_error`. Fields a sidecar does not report (an older release, or a field
added later, such as errant transactions) show as "-".
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

UNKNOWN = "unknown"
ABSENT = "-"


@dataclass(frozen=True)
class PodFacts:
    """What the Kubernetes API says about one pod."""

    name: str
    node: str | None
    phase: str
    ready: bool  # the pod's Ready condition


@dataclass(frozen=True)
class Fetched:
    """A pod's /status document, or why there is none."""

    document: Mapping[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class Row:
    pod: str
    node: str
    role: str
    ready: str
    server_id: str
    gtid: str
    lag: str
    io_sql: str
    errant: str
    last_error: str
    clone: str


COLUMNS = (
    ("POD", "pod"), ("NODE", "node"), ("ROLE", "role"), ("READY", "ready"),
    ("SERVER_ID", "server_id"), ("GTID", "gtid"), ("LAG", "lag"), ("IO/SQL", "io_sql"),
    ("ERRANT", "errant"), ("LAST_ERROR", "last_error"), ("CLONE", "clone"),
)


def _ordinal(name: str) -> tuple[str, int]:
    match = re.match(r"^(.*)-(\d+)$", name)
    return (match.group(1), int(match.group(2))) if match else (name, -1)


def _text(value: Any) -> str:
    return ABSENT if value is None or value == "" else str(value)


def _gtid(document: Mapping[str, Any]) -> str:
    """The server's executed position: MariaDB's gtid_current_pos, MySQL's gtid_executed."""
    gtid = document.get("gtid") or {}
    for key in ("gtid_current_pos", "gtid_executed", "gtid_binlog_pos"):
        if gtid.get(key):
            return str(gtid[key])
    return ABSENT


def _errant(document: Mapping[str, Any]) -> str:
    replication = document.get("replication") or {}
    for holder in (document, replication):
        if "errant_transactions" in holder:
            value = holder["errant_transactions"]
            return "none" if value in (None, "", [], 0) else _text(
                ",".join(value) if isinstance(value, list) else value
            )
    return ABSENT


def _last_error(document: Mapping[str, Any]) -> str:
    if not document.get("up", True):
        return _text(document.get("error"))
    replication = document.get("replication") or {}
    for kind in ("sql", "io"):
        errno = replication.get(f"last_{kind}_errno")
        if errno:
            return f"{kind} {errno}: {replication.get(f'last_{kind}_error') or ''}".strip()
    ready = document.get("ready") or {}
    return ABSENT if ready.get("ok", True) else _text(ready.get("reason"))


def _clone(document: Mapping[str, Any]) -> str:
    ready = document.get("ready") or {}
    if ready.get("reason") == "clone in progress":
        return "in progress"
    record = (document.get("clone") or {}).get("record")
    if record:
        return f"cloned from {record.get('donor', '?')}"
    return ABSENT


def _lag(document: Mapping[str, Any]) -> str:
    replication = document.get("replication")
    if not replication:
        return ABSENT
    lag = replication.get("lag_seconds")
    return ABSENT if lag is None else f"{float(lag):.1f}s"


def _threads(document: Mapping[str, Any]) -> str:
    replication = document.get("replication")
    if not replication or "io_running" not in replication:
        return ABSENT
    return f"{replication.get('io_running')}/{replication.get('sql_running')}"


def build_row(pod: PodFacts, fetched: Fetched) -> Row:
    ready = "yes" if pod.ready else "no"
    node = pod.node or ABSENT
    document = fetched.document
    if document is None:
        reason = fetched.error or "no /status document"
        if pod.phase != "Running":
            reason = f"pod {pod.phase}: {reason}"
        return Row(pod.name, node, UNKNOWN, ready, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT,
                   reason, ABSENT)
    return Row(
        pod=pod.name, node=node, role=_text(document.get("role")), ready=ready,
        server_id=_text(document.get("server_id")), gtid=_gtid(document), lag=_lag(document),
        io_sql=_threads(document), errant=_errant(document),
        last_error=_last_error(document), clone=_clone(document),
    )


def build_rows(pods: Sequence[PodFacts], fetched: Mapping[str, Fetched]) -> list[Row]:
    """One row per pod, in ordinal order; a pod missing from `fetched` is unknown."""
    ordered = sorted(pods, key=lambda pod: _ordinal(pod.name))
    return [build_row(pod, fetched.get(pod.name, Fetched(None, "not fetched")))
            for pod in ordered]


def render_table(rows: Sequence[Row], max_width: int = 48) -> str:
    """Aligned columns as kubectl prints them; long cells are cut with an ellipsis."""
    def cell(value: str) -> str:
        return value if len(value) <= max_width else value[: max_width - 1] + "…"

    table = [[title for title, _ in COLUMNS]]
    table += [[cell(getattr(row, field)) for _, field in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    return "\n".join(
        "   ".join(value.ljust(width) for value, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ) + "\n"


def render_json(namespace: str, rows: Sequence[Row],
                documents: Mapping[str, Fetched]) -> str:
    """Rows for scripts, each with the sidecar's whole document (or null) beside it."""
    pods = []
    for row in rows:
        fetched = documents.get(row.pod)
        pods.append({**asdict(row), "status": None if fetched is None else fetched.document})
    return json.dumps({"namespace": namespace, "pods": pods}, indent=2, sort_keys=True) + "\n"
