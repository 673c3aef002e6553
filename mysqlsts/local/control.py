"""The `local` subcommands' work: prepare a set's directory, start and stop its supervisor,
wait for it to converge, observe pods for `status`, kill a pod.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mysqlsts
from mysqlsts.adapters.fs import atomic_write
from mysqlsts.errors import ConfigError, MysqlstsError
from mysqlsts.local import render
from mysqlsts.local.capacity import capacity_problem
from mysqlsts.local.procs import (
    Readiness,
    last_line,
    ports_in_use,
    probe_readiness,
    process_alive,
)
from mysqlsts.local.reconcile import Act
from mysqlsts.local.records import PodRecord, SupervisorPodState
from mysqlsts.local.render import PodView, status_document
from mysqlsts.local.spec import HOST, SECRET_NAMES, SetLayout, SetSpec
from mysqlsts.local.store import (
    pod_records,
    read_pod_record,
    read_state,
    read_supervisor_pid,
    write_spec,
)

log = logging.getLogger(__name__)

CNF_NAMES = ("master.cnf", "slave.cnf")
# Consecutive failures of one pod after which `up`/`scale` stop waiting and report it.
GIVE_UP_AFTER_FAILURES = 3


def default_cnf_dir() -> Path:
    """The project's MariaDB role cnf files, in the checkout the package runs from (they are
    not package data: an installed wheel needs --cnf-dir)."""
    candidate = Path(mysqlsts.__file__).resolve().parent.parent / "images" / "cnf" / "mariadb"
    if all((candidate / name).is_file() for name in CNF_NAMES):
        return candidate
    raise ConfigError(
        "cannot find the default master.cnf/slave.cnf (images/cnf/mariadb); pass --cnf-dir"
    )


@contextlib.contextmanager
def up_lock(layout: SetLayout) -> Iterator[None]:
    """One `up` at a time creates or resumes a set, until its supervisor runs. The loser of a
    race on a new directory is told so (it would otherwise find a half-made set and take it
    for a stranger's files); on an existing set it waits its turn, a few seconds at most.

    The lock is an flock on the directory itself: a lock file would make a new directory
    look non-empty. A directory this `up` made is removed again if it fails before using it.
    """
    made = not layout.root.exists()
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(layout.root, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise ConfigError(f"cannot create {layout.root}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not layout.spec.exists():
                raise ConfigError(
                    f"another `local up` is creating {layout.root}; wait for it, then run "
                    "`local status`"
                ) from None
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        except BaseException:
            if made:
                with contextlib.suppress(OSError):
                    layout.root.rmdir()  # only while empty: nothing else is touched
            raise
    finally:
        os.close(fd)


def check_cnf_dir(layout: SetLayout, cnf_dir: Path) -> None:
    """An existing set keeps the ConfigMap it was created with: `--cnf-dir` applied to a running
    set would reach only the pods created after it, so a different one is refused."""
    differing = [name for name in CNF_NAMES
                 if _read_cnf(cnf_dir / name) != _read_cnf(layout.config_map / name)]
    if differing:
        raise ConfigError(
            f"{layout.root} keeps the cnf it was created with; --cnf-dir {cnf_dir} has another "
            f"{' and '.join(differing)} (edit {layout.config_map} instead: pods read it when "
            "they are created)"
        )


def _read_cnf(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


def prepare(layout: SetLayout, spec: SetSpec, cnf_dir: Path) -> None:
    """Create the set's files once: secrets (0600), the ConfigMap copy, spec.json."""
    if layout.root.exists() and not layout.spec.exists() and any(layout.root.iterdir()):
        raise ConfigError(f"{layout.root} is not empty and holds no local set; refusing to use it")
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
        layout.secrets.mkdir(mode=0o700, exist_ok=True)
        for name in SECRET_NAMES:
            path = layout.secret(name)
            if not path.exists():
                atomic_write(path, secrets.token_urlsafe(24) + "\n", mode=0o600)
        layout.config_map.mkdir(exist_ok=True)
        for name in CNF_NAMES:
            if not (layout.config_map / name).exists():
                atomic_write(layout.config_map / name, (cnf_dir / name).read_bytes())
        layout.pods.mkdir(exist_ok=True)
        write_spec(layout, spec)
    except OSError as exc:
        raise ConfigError(f"cannot prepare {layout.root}: {exc}") from exc


def check_ports(layout: SetLayout, spec: SetSpec) -> None:
    """Before a supervisor starts: the ports of every pod it will create are free. Pods still
    running from an earlier supervisor hold their own ports and are adopted, not created."""
    running = {o for o, record in pod_records(layout).items() if _pod_alive(layout, record)}
    peers = spec.peers()
    wanted = [port for o in range(spec.replicas) if o not in running
              for port in (peers.address(o).mysql_port, peers.address(o).clone_port,
                           peers.address(o).http_port)]
    taken = ports_in_use(HOST, wanted)
    if taken:
        raise ConfigError(
            f"port(s) {taken} on {HOST} are in use by another process; choose another --base-port"
        )


def check_capacity(layout: SetLayout, spec: SetSpec) -> None:
    """Before asking for more pods: the machine has the memory and disk they will take."""
    running = {o for o, record in pod_records(layout).items() if _pod_alive(layout, record)}
    new_pods = [o for o in range(spec.replicas) if o not in running]
    new_data_dirs = [o for o in new_pods if not layout.pod(spec.pod_name(o)).data.exists()]
    problem = capacity_problem(len(new_pods), len(new_data_dirs), _memory_available(),
                               shutil.disk_usage(_existing_ancestor(layout.root)).free)
    if problem:
        raise ConfigError(f"{spec.replicas} replicas do not fit on this machine: {problem}")


def _memory_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 2**62  # unknown: do not refuse on a guess


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def settle_at_ready(layout: SetLayout, spec: SetSpec) -> int:
    """After `up`/`scale` gave up: keep the pods that are ready (the lowest ordinals, as
    OrderedReady made them) and create no more, instead of trying on until `down`. Returns the
    replicas the set now keeps."""
    state = read_state(layout)
    ready = 0
    while state is not None and ready < spec.replicas and (
        ready in state.pods and (state.pods[ready].ready or state.pods[ready].kept_down)
    ):
        ready += 1
    if ready < spec.replicas:
        write_spec(layout, spec.scaled(ready))
    return min(ready, spec.replicas)


def supervisor_pid(layout: SetLayout) -> int | None:
    """The running supervisor's pid: it holds the lock for as long as it lives."""
    if not layout.supervisor_lock.exists():
        return None
    with layout.supervisor_lock.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass
        else:
            fcntl.flock(lock, fcntl.LOCK_UN)
            return None
    for _ in range(50):  # the lock is taken just before the pid file is written
        pid = read_supervisor_pid(layout)
        if pid is not None:
            return pid
        time.sleep(0.1)
    return None


def start_supervisor(layout: SetLayout, tool: tuple[str, ...]) -> int:
    running = supervisor_pid(layout)
    if running is not None:
        return running
    with layout.supervisor_log.open("ab") as handle:
        subprocess.Popen(
            [*tool, "local", "_supervise", "--dir", str(layout.root)],
            stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,  # a daemon: outlives `up`, immune to the terminal's signals
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pid = supervisor_pid(layout)
        if pid is not None:
            return pid
        time.sleep(0.1)
    tail = last_line(layout.supervisor_log) or "no output"
    raise MysqlstsError(f"the supervisor did not start: {tail}")


def wait_converged(layout: SetLayout, spec: SetSpec, timeout: float, since: float) -> None:
    """Return once the supervisor reports `spec.replicas` ready pods and nothing else running;
    raise with the reason when a pod keeps failing, the supervisor dies, or time runs out."""
    deadline = time.monotonic() + timeout
    last_note = ""
    while True:
        state = read_state(layout)
        fresh = state is not None and state.updated_at >= since and state.desired == spec.replicas
        pods = state.pods if state is not None and fresh else {}
        if state is not None and fresh and state.act is Act.STEADY and all(
            o in pods and (pods[o].ready or pods[o].kept_down) for o in range(spec.replicas)
        ) and not any(pod.alive for o, pod in pods.items() if o >= spec.replicas):
            return
        for ordinal, pod in pods.items():
            # Failures from before this call (an earlier `up`) do not count against it.
            if pod.failures >= GIVE_UP_AFTER_FAILURES and (pod.failed_at or 0) >= since:
                raise MysqlstsError(
                    f"{spec.pod_name(ordinal)} failed {pod.failures} times: {pod.last_end}"
                )
        if supervisor_pid(layout) is None:
            tail = last_line(layout.supervisor_log) or "no output"
            raise MysqlstsError(f"the supervisor is not running: {tail}")
        note = state.decision if state is not None and fresh else ""
        if note and note != last_note:
            log.info("%s", note)
            last_note = note
        if time.monotonic() > deadline:
            raise MysqlstsError(
                f"the set did not converge in {timeout:.0f}s: {note or 'no progress'}"
                + _pending_reason(layout, spec, pods)
            )
        time.sleep(0.5)


def _pending_reason(layout: SetLayout, spec: SetSpec, pods: dict[int, SupervisorPodState]) -> str:
    """The first pod that is not ready, and why it is not now (not why an earlier one ended)."""
    now = time.time()
    for ordinal in range(spec.replicas):
        pod = pods.get(ordinal)
        if pod is None or not (pod.ready or pod.kept_down):
            view = PodView(
                ordinal, alive=pod is not None and pod.alive, ready=False,
                record=read_pod_record(layout.pod(spec.pod_name(ordinal))), supervised=pod,
                not_ready=pod.not_ready if pod else None,
            )
            why = render.reason(view, now)
            return f"; {spec.pod_name(ordinal)} is {render.phase(view, now)}" + (
                f": {why}" if why else ""
            )
    return ""


def stop_supervisor(layout: SetLayout, timeout: float) -> None:
    pid = supervisor_pid(layout)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while supervisor_pid(layout) is not None:
        if time.monotonic() > deadline:
            raise MysqlstsError(f"the supervisor (pid {pid}) did not stop within {timeout:.0f}s")
        time.sleep(0.2)


def _pod_alive(layout: SetLayout, record: PodRecord | None) -> bool:
    return record is not None and process_alive(record.pid, str(layout.root))


def stop_orphans(layout: SetLayout, grace: float = 90.0) -> list[int]:
    """Stop pods no supervisor watches (it crashed): SIGTERM, then SIGKILL their groups."""
    alive = {o: r.pid for o, r in pod_records(layout).items() if _pod_alive(layout, r)}
    for pid in alive.values():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(process_alive(pid, str(layout.root)) for pid in alive.values()):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for pid in alive.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    return sorted(alive)


def kill_pod(layout: SetLayout, spec: SetSpec, ordinal: int) -> int:
    record = pod_records(layout).get(ordinal)
    if record is None or not _pod_alive(layout, record):
        raise ConfigError(f"{spec.pod_name(ordinal)} is not running in {layout.root}")
    os.killpg(record.pid, signal.SIGKILL)
    return record.pid


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
    _wait_for_pod(layout, spec, ordinal, timeout, since, "stopped",
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
    _wait_for_pod(layout, spec, ordinal, timeout, since, "ready",
                  lambda pod: pod.ready and not pod.kept_down)


def _member(spec: SetSpec, ordinal: int) -> str:
    if ordinal >= spec.replicas:
        raise ConfigError(
            f"{spec.pod_name(ordinal)} is not in the set (replicas: {spec.replicas})"
        )
    return spec.pod_name(ordinal)


def _wait_for_pod(
    layout: SetLayout, spec: SetSpec, ordinal: int, timeout: float, since: float, goal: str,
    reached: Callable[[SupervisorPodState], bool],
) -> None:
    """Until the supervisor reports the pod as `reached` in a cycle that began after `since`."""
    name = spec.pod_name(ordinal)
    deadline = time.monotonic() + timeout
    while True:
        state = read_state(layout)
        pod = state.pods.get(ordinal) if state is not None and state.updated_at >= since else None
        if pod is not None and reached(pod):
            return
        if pod is not None and pod.failures >= GIVE_UP_AFTER_FAILURES and (
            pod.failed_at or 0
        ) >= since:
            raise MysqlstsError(f"{name} failed {pod.failures} times: {pod.last_end}")
        if supervisor_pid(layout) is None:
            tail = last_line(layout.supervisor_log) or "no output"
            raise MysqlstsError(f"the supervisor is not running: {tail}")
        if time.monotonic() > deadline:
            why = (pod.not_ready or pod.last_end) if pod is not None else None
            raise MysqlstsError(f"{name} is not {goal} after {timeout:.0f}s"
                                + (f": {why}" if why else ""))
        time.sleep(0.3)


def observe(layout: SetLayout, spec: SetSpec) -> dict[str, Any]:
    """A status document from a live look: pod records, process liveness, readiness probes."""
    records = pod_records(layout)
    state = read_state(layout)
    supervised = state.pods if state is not None else {}
    views = []
    for ordinal in sorted(set(range(spec.replicas)) | set(records)):
        record = records.get(ordinal)
        alive = _pod_alive(layout, record)
        if not alive and ordinal >= spec.replicas:
            continue  # a scaled-down pod: its data dir stays, the pod is gone
        port = spec.peers().address(ordinal).http_port
        probe = probe_readiness(HOST, port) if alive else Readiness(False)
        views.append(PodView(
            ordinal=ordinal, alive=alive, ready=probe.ready, record=record,
            supervised=supervised.get(ordinal), not_ready=probe.reason,
            kept_down=layout.pod(spec.pod_name(ordinal)).keep_down.exists(),
        ))
    return status_document(spec, layout, views, supervisor_pid(layout), time.time())


def purge(layout: SetLayout) -> None:
    shutil.rmtree(layout.root)
