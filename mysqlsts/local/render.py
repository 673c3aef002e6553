"""`local status`: observations in, a JSON document or a table out. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mysqlsts.core.identity import identify
from mysqlsts.local.records import Phase, PodRecord, SupervisorPodState
from mysqlsts.local.spec import SetLayout, SetSpec

KEPT_DOWN = "kept down by `local stop`; `local start` brings it back"


@dataclass(frozen=True)
class PodView:
    """What was seen of one ordinal: its pod record, the supervisor's memory, a live probe."""

    ordinal: int
    alive: bool
    ready: bool
    record: PodRecord | None = None
    supervised: SupervisorPodState | None = None
    not_ready: str | None = None  # the live pod's readiness answer
    kept_down: bool = False  # by `local stop`


def _back_off(view: PodView, now: float) -> float:
    """Seconds before the supervisor re-creates this pod; 0 when it is not holding it back."""
    until = view.supervised.back_off_until if view.supervised else None
    return 0.0 if view.alive or until is None else max(until - now, 0.0)


def phase(view: PodView, now: float) -> Phase:
    if view.alive:
        return view.record.phase if view.record else Phase.CREATING
    if view.kept_down:
        return Phase.STOPPED
    if _back_off(view, now) > 0:
        return Phase.BACK_OFF
    if view.record is not None and view.record.phase is Phase.FAILED:
        return Phase.FAILED
    return Phase.ABSENT


def reason(view: PodView, now: float) -> str | None:
    """Why the pod is not ready now: the live pod's own answer, never an earlier pod's (that
    one is `last_end`); for a pod that is gone, why it ended."""
    if view.ready:
        return None
    if view.kept_down:
        return KEPT_DOWN if not view.alive else f"stopping: {KEPT_DOWN}"
    if view.alive:
        return view.not_ready
    ended = (view.supervised.last_end if view.supervised else None) or (
        view.record.reason if view.record else None
    )
    waiting = _back_off(view, now)
    if waiting > 0:
        # As a kubelet says it: the pod is held back, and why it ended.
        return f"back-off {math.ceil(waiting)}s restarting the pod" + (
            f" after: {ended}" if ended else ""
        )
    return ended


def pod_document(spec: SetSpec, layout: SetLayout, view: PodView, now: float) -> dict[str, Any]:
    name = spec.pod_name(view.ordinal)
    identity = identify(name, spec.service, spec.server_id_base)
    address = spec.peers().address(view.ordinal)
    paths = layout.pod(name)
    return {
        "ordinal": view.ordinal,
        "name": name,
        "role": str(identity.role),
        "ready": view.ready,
        "alive": view.alive,
        "phase": str(phase(view, now)),
        "server_id": identity.server_id,
        "pid": view.record.pid if view.record and view.alive else None,
        "restarts": view.supervised.restarts if view.supervised else 0,
        "reason": reason(view, now),
        "kept_down": view.kept_down,
        "last_end": view.supervised.last_end if view.supervised else None,
        "mysql": {"host": address.host, "port": address.mysql_port},
        "clone": {"host": address.host, "port": address.clone_port},
        "http": {"host": address.host, "port": address.http_port},
        "data_dir": str(paths.data),
        "logs": str(paths.logs),
    }


def status_document(
    spec: SetSpec, layout: SetLayout, views: list[PodView], supervisor_pid: int | None,
    now: float,
) -> dict[str, Any]:
    return {
        "dir": str(layout.root),
        "replicas": spec.replicas,
        "supervisor": {"running": supervisor_pid is not None, "pid": supervisor_pid},
        "pods": [pod_document(spec, layout, view, now)
                 for view in sorted(views, key=_ordinal)],
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
        if pod["ready"]:
            continue
        if pod["reason"]:
            lines.append(f"{pod['name']}: {pod['reason']}")
        if pod["alive"] and pod["last_end"]:
            lines.append(f"{pod['name']}: restarted after: {pod['last_end']}")
    return "\n".join(lines)
