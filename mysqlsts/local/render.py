"""`local status`: observations in, a JSON document or a table out. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mysqlsts.core.identity import identify
from mysqlsts.local.spec import SetLayout, SetSpec


@dataclass(frozen=True)
class PodView:
    """What was seen of one ordinal: its pod record, the supervisor's memory, a live probe."""

    ordinal: int
    alive: bool
    ready: bool
    record: Mapping[str, Any] | None = None
    supervised: Mapping[str, Any] | None = None


def _phase(view: PodView) -> str:
    recorded = str(view.record.get("phase")) if view.record else None
    if view.alive:
        return recorded or "creating"
    if recorded == "failed":
        return "failed"
    return "absent"


def pod_document(spec: SetSpec, layout: SetLayout, view: PodView) -> dict[str, Any]:
    name = spec.pod_name(view.ordinal)
    identity = identify(name, spec.service, spec.server_id_base)
    address = spec.peers().address(view.ordinal)
    paths = layout.pod(name)
    supervised = view.supervised or {}
    reason = supervised.get("reason") or (
        view.record.get("reason") if view.record and not view.alive else None
    )
    return {
        "ordinal": view.ordinal,
        "name": name,
        "role": str(identity.role),
        "ready": view.ready,
        "alive": view.alive,
        "phase": _phase(view),
        "server_id": identity.server_id,
        "pid": view.record.get("pid") if view.record and view.alive else None,
        "restarts": int(supervised.get("restarts", 0)),
        "reason": reason,
        "mysql": {"host": address.host, "port": address.mysql_port},
        "clone": {"host": address.host, "port": address.clone_port},
        "http": {"host": address.host, "port": address.http_port},
        "data_dir": str(paths.data),
        "logs": str(paths.logs),
    }


def status_document(
    spec: SetSpec, layout: SetLayout, views: list[PodView], supervisor_pid: int | None
) -> dict[str, Any]:
    return {
        "dir": str(layout.root),
        "replicas": spec.replicas,
        "supervisor": {"running": supervisor_pid is not None, "pid": supervisor_pid},
        "pods": [pod_document(spec, layout, view) for view in sorted(views, key=_ordinal)],
        "credentials": {
            "user": "root",
            "password_file": str(layout.secret("root-password")),
        },
    }


def _ordinal(view: PodView) -> int:
    return view.ordinal


_COLUMNS = ("NAME", "ROLE", "PHASE", "READY", "SERVER_ID", "MYSQL", "HTTP", "RESTARTS")


def render_table(document: Mapping[str, Any]) -> str:
    rows = [
        (
            pod["name"], pod["role"], pod["phase"], "yes" if pod["ready"] else "no",
            str(pod["server_id"]), f"{pod['mysql']['host']}:{pod['mysql']['port']}",
            f"{pod['http']['host']}:{pod['http']['port']}", str(pod["restarts"]),
        )
        for pod in document["pods"]
    ]
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [_COLUMNS, *rows]]
    supervisor = document["supervisor"]
    state = f"running (pid {supervisor['pid']})" if supervisor["running"] else "not running"
    lines.append(f"replicas: {document['replicas']}; supervisor {state}; "
                 f"root password in {document['credentials']['password_file']}")
    for pod in document["pods"]:
        if pod["reason"] and not pod["ready"]:
            lines.append(f"{pod['name']}: {pod['reason']}")
    return "\n".join(lines)
