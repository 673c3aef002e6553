"""`local kill`, `stop` and `start`: one pod crashes, is kept down as if its node were gone,
or comes back."""

from __future__ import annotations

import time

from mysqlsts.adapters.fs import atomic_write
from mysqlsts.errors import ConfigError
from mysqlsts.local.daemon import supervisor_pid
from mysqlsts.local.procs import running_pods
from mysqlsts.local.spec import SetLayout, SetSpec
from mysqlsts.local.waiting import wait_for_pod


def kill_pod(layout: SetLayout, spec: SetSpec, ordinal: int) -> int:
    """SIGKILL the pod's whole process group at once, like a node crash; its pgid."""
    group = running_pods(layout).get(ordinal)
    if group is None:
        raise ConfigError(f"{spec.pod_name(ordinal)} is not running in {layout.root}")
    group.kill()
    return group.pid


def stop_pod(layout: SetLayout, spec: SetSpec, ordinal: int, timeout: float) -> bool:
    """Keep one pod down, as if its node were gone: the supervisor stops it gracefully and
    creates it no more until `start_pod`. Its data dir stays. Returns False when no
    supervisor runs (the pod then stays down once one does)."""
    paths = layout.pod(_member(spec, ordinal))
    since = time.time()
    try:
        paths.root.mkdir(parents=True, exist_ok=True)
        atomic_write(paths.keep_down, f"kept down by `local stop` at {since:.0f}\n")
    except OSError as exc:
        raise ConfigError(f"cannot stop {paths.root.name}: {exc}") from exc
    if supervisor_pid(layout) is None:
        return False
    wait_for_pod(layout, spec, ordinal, timeout, since, "stopped",
                 lambda pod: pod.kept_down and not pod.alive)
    return True


def start_pod(layout: SetLayout, spec: SetSpec, ordinal: int, timeout: float) -> None:
    """Bring back a pod `stop_pod` kept down, and wait until it is ready."""
    paths = layout.pod(_member(spec, ordinal))
    if supervisor_pid(layout) is None:
        raise ConfigError(f"no supervisor runs for {layout.root}; run `local up` first")
    since = time.time()
    try:
        paths.keep_down.unlink(missing_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot start {paths.root.name}: {exc}") from exc
    wait_for_pod(layout, spec, ordinal, timeout, since, "ready",
                 lambda pod: pod.ready and not pod.kept_down)


def _member(spec: SetSpec, ordinal: int) -> str:
    if ordinal >= spec.replicas:
        raise ConfigError(
            f"{spec.pod_name(ordinal)} is not in the set (replicas: {spec.replicas})"
        )
    return spec.pod_name(ordinal)
