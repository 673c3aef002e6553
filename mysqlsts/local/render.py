"""`local status`: observations in, typed views out (`SetView`, `PodView`), and the views as
the JSON document `local status --json` prints or as a table. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mysqlsts.core.identity import Role, identify
from mysqlsts.core.peers import PeerAddress
from mysqlsts.local.records import Phase, PodRecord, SupervisorPodState
from mysqlsts.local.spec import SetLayout, SetSpec

KEPT_DOWN = "kept down by `local stop`; `local start` brings it back"


@dataclass(frozen=True)
class PodObservation:
    """What was seen of one ordinal: its pod record, the supervisor's memory, a live probe."""

    ordinal: int
    alive: bool
    ready: bool
    record: PodRecord | None = None
    supervised: SupervisorPodState | None = None
    not_ready: str | None = None  # the live pod's readiness answer
    kept_down: bool = False  # by `local stop`


def _back_off(view: PodObservation, now: float) -> float:
    """Seconds before the supervisor re-creates this pod; 0 when it is not holding it back."""
    until = view.supervised.back_off_until if view.supervised else None
    return 0.0 if view.alive or until is None else max(until - now, 0.0)


def phase(view: PodObservation, now: float) -> Phase:
    if view.alive:
        return view.record.phase if view.record else Phase.CREATING
    if view.kept_down:
        return Phase.STOPPED
    if _back_off(view, now) > 0:
        return Phase.BACK_OFF
    if view.record is not None and view.record.phase is Phase.FAILED:
        return Phase.FAILED
    return Phase.ABSENT


def reason(view: PodObservation, now: float) -> str | None:
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


@dataclass(frozen=True)
class PodView:
    """One pod as `local status` shows it."""

    ordinal: int
    name: str
    role: Role
    ready: bool
    alive: bool
    phase: Phase
    server_id: int
    pid: int | None  # the pod's process group, while it runs
    restarts: int
    reason: str | None  # why it is not ready now
    kept_down: bool
    last_end: str | None  # why its previous pod process ended
    address: PeerAddress  # host and its mysql, clone and http ports
    data_dir: Path
    logs: Path


@dataclass(frozen=True)
class SetView:
    """The set as `local status` shows it."""

    dir: Path
    replicas: int
    supervisor_pid: int | None
    pods: tuple[PodView, ...]  # by ordinal
    password_file: Path  # root's
    user: str = "root"
    store: str = ""  # where `local backup` writes ("" = none)
    restored_from: str = ""  # the backup mysql-0 was restored from ("" = none)


def pod_view(spec: SetSpec, layout: SetLayout, seen: PodObservation, now: float) -> PodView:
    name = spec.pod_name(seen.ordinal)
    identity = identify(name, spec.service, spec.server_id_base)
    paths = layout.pod(name)
    return PodView(
        ordinal=seen.ordinal,
        name=name,
        role=identity.role,
        ready=seen.ready,
        alive=seen.alive,
        phase=phase(seen, now),
        server_id=identity.server_id,
        pid=seen.record.pid if seen.record and seen.alive else None,
        restarts=seen.supervised.restarts if seen.supervised else 0,
        reason=reason(seen, now),
        kept_down=seen.kept_down,
        last_end=seen.supervised.last_end if seen.supervised else None,
        address=spec.peers().address(seen.ordinal),
        data_dir=paths.data,
        logs=paths.logs,
    )


def set_view(
    spec: SetSpec, layout: SetLayout, seen: list[PodObservation], supervisor_pid: int | None,
    now: float,
) -> SetView:
    return SetView(
        dir=layout.root,
        replicas=spec.replicas,
        supervisor_pid=supervisor_pid,
        pods=tuple(pod_view(spec, layout, one, now)
                   for one in sorted(seen, key=lambda one: one.ordinal)),
        password_file=layout.secret("root-password"),
        store=spec.store,
        restored_from=spec.restore_from,
    )


def status_document(view: SetView) -> dict[str, Any]:
    """What `local status --json` prints: the only place the views become JSON."""
    return {
        "dir": str(view.dir),
        "replicas": view.replicas,
        "supervisor": {"running": view.supervisor_pid is not None, "pid": view.supervisor_pid},
        "pods": [_pod_document(pod) for pod in view.pods],
        "credentials": {"user": view.user, "password_file": str(view.password_file)},
        "store": view.store,
        "restored_from": view.restored_from,
    }


def _pod_document(pod: PodView) -> dict[str, Any]:
    address = pod.address
    return {
        "ordinal": pod.ordinal,
        "name": pod.name,
        "role": str(pod.role),
        "ready": pod.ready,
        "alive": pod.alive,
        "phase": str(pod.phase),
        "server_id": pod.server_id,
        "pid": pod.pid,
        "restarts": pod.restarts,
        "reason": pod.reason,
        "kept_down": pod.kept_down,
        "last_end": pod.last_end,
        "mysql": {"host": address.host, "port": address.mysql_port},
        "clone": {"host": address.host, "port": address.clone_port},
        "http": {"host": address.host, "port": address.http_port},
        "data_dir": str(pod.data_dir),
        "logs": str(pod.logs),
    }


_COLUMNS = ("NAME", "ROLE", "PHASE", "READY", "SERVER_ID", "MYSQL", "HTTP", "RESTARTS")


def render_table(view: SetView) -> str:
    rows = [
        (
            pod.name, str(pod.role), str(pod.phase), "yes" if pod.ready else "no",
            str(pod.server_id), f"{pod.address.host}:{pod.address.mysql_port}",
            f"{pod.address.host}:{pod.address.http_port}", str(pod.restarts),
        )
        for pod in view.pods
    ]
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [_COLUMNS, *rows]]
    state = (f"running (pid {view.supervisor_pid})" if view.supervisor_pid is not None
             else "not running")
    lines.append(f"replicas: {view.replicas}; supervisor {state}; "
                 f"root password in {view.password_file}")
    for pod in view.pods:
        if pod.ready:
            continue
        if pod.reason:
            lines.append(f"{pod.name}: {pod.reason}")
        if pod.alive and pod.last_end:
            lines.append(f"{pod.name}: restarted after: {pod.last_end}")
    return "\n".join(lines)
