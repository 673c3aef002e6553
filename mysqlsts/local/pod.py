"""One local pod: a process that leads the pod's process group (as the pause container holds a
pod's namespaces), runs the init containers in order, then the server (`mysqlsts server`: the
bootstrap, mariadbd as its child, the watchdog that stops it when the sidecar's heartbeat in the
pod's run dir goes stale) and the sidecar.

Every container is a child in this process group, so `local kill` (SIGKILL to the group) takes
the whole pod at once, like a node crash. SIGTERM stops the pod gracefully: sidecar first, then
the server. When a container fails the pod records why and exits; the supervisor re-creates it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import IO

from mysqlsts.core.watchdog import WATCHDOG_EXIT
from mysqlsts.local.mariadbd import prepare
from mysqlsts.local.plan import POD_UID, PodPlan, Step, merged_env
from mysqlsts.local.procs import last_line, ports_in_use
from mysqlsts.local.records import Phase, PodRecord
from mysqlsts.local.spec import PodPaths
from mysqlsts.local.store import write_pod_record

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
SIDECAR_GRACE_SECONDS = 30.0
SERVER_GRACE_SECONDS = 90.0
# Closing lines that say a process stopped, not why.
_UNTELLING = ("Aborting", "--- mysqlsts local:")


class _Stop:
    """Set by SIGTERM/SIGINT; the loops act on it (handlers only set flags)."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True


class _Container:
    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path, since: int):
        self.name = name
        self.process = process
        self.log_path = log_path
        self.since = since

    def failure(self) -> str:
        code = self.process.returncode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        line = last_line(self.log_path, self.since, skip=_UNTELLING)
        return f"{self.name} {how}" + (f": {line}" if line else "")


class _Server(_Container):
    """`mysqlsts server`: mariadbd's own error log says why it failed, the server container's
    log why the watchdog stopped it."""

    def __init__(self, process: subprocess.Popen[bytes], own_log: Path, since: int,
                 error_log: Path, error_since: int) -> None:
        super().__init__("server", process, own_log, since)
        self.error_log, self.error_since = error_log, error_since

    def failure(self) -> str:
        code = self.process.returncode  # mariadbd's, as `mysqlsts server` passes it on
        line = last_line(self.error_log, self.error_since, skip=_UNTELLING)
        if code == WATCHDOG_EXIT or code < 0 or not line:
            # the watchdog, a kill of `mysqlsts server`, or no mariadbd ran (its bootstrap
            # failed): the server container's own log says why
            return super().failure()
        how = f"was killed by signal {code - 128}" if code > 128 else f"exited with code {code}"
        return f"mariadbd {how}: {line}"


class PodRunner:
    def __init__(self, plan: PodPlan, paths: PodPaths, inherited_env: Mapping[str, str]):
        self.plan = plan
        self.paths = paths
        # A new incarnation id each time the pod process is created, as a re-created pod gets
        # a new uid: the primary lease's holder is <pod name>/<uid>, so a new mysql-0 waits out
        # a dead one's lease; a container restarted inside this process would keep it.
        self.uid = uuid.uuid4().hex[:12]
        self.env = {**merged_env(inherited_env, plan.env), POD_UID: self.uid}
        self.stop = _Stop()
        self.started_at = time.time()

    def _record(self, phase: Phase, reason: str | None = None) -> None:
        write_pod_record(self.paths, PodRecord(
            pid=os.getpid(), ordinal=self.plan.ordinal, phase=phase, reason=reason,
            started_at=self.started_at, updated_at=time.time(),
        ))
        if reason:
            log.warning("pod %s is %s: %s", self.plan.name, phase, reason)
        else:
            log.info("pod %s is %s", self.plan.name, phase)

    def _open_log(self, name: str) -> tuple[IO[bytes], int]:
        path = self.paths.log(name)
        handle = path.open("ab")
        handle.write(f"--- mysqlsts local: {name} starting at {time.time():.3f}\n".encode())
        handle.flush()
        return handle, handle.tell()

    def _spawn(self, step: Step) -> _Container:
        handle, since = self._open_log(step.name)
        with handle:
            process = subprocess.Popen(
                step.argv, env=self.env, stdin=subprocess.DEVNULL, stdout=handle,
                stderr=subprocess.STDOUT,
            )
        return _Container(step.name, process, self.paths.log(step.name), since)

    def _start_server(self) -> _Container:
        """The server container: `mysqlsts server` (bootstrap, mariadbd, the watchdog) in the
        pod's process group, so `local kill` takes mariadbd with it."""
        error_log = self.plan.server.error_log
        error_since = error_log.stat().st_size if error_log.exists() else 0
        prepare(self.plan.server)
        container = self._spawn(self.plan.server_step)
        return _Server(container.process, container.log_path, container.since, error_log,
                       error_since)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        for directory in (self.paths.logs, self.paths.data, self.paths.run):
            directory.mkdir(parents=True, exist_ok=True)
        # A new pod gets a fresh emptyDir: an earlier pod's heartbeat would make its server
        # wait for this pod's sidecar as after a container restart (docs/takeover.md).
        self.paths.watchdog_heartbeat.unlink(missing_ok=True)
        address = self.plan.address
        taken = ports_in_use(address.host, [address.mysql_port, address.clone_port,
                                            address.http_port])
        if taken:
            self._record(Phase.FAILED, f"port(s) {taken} on {address.host} are in use by another "
                                   "process; choose another --base-port")
            return 1
        for step in self.plan.init_steps:
            self._record(Phase(step.name))
            container = self._spawn(step)
            while container.process.poll() is None:
                if self.stop.requested:
                    self._terminate(container, SIDECAR_GRACE_SECONDS)
                    self._record(Phase.STOPPED)
                    return 0
                time.sleep(POLL_SECONDS)
            if container.process.returncode != 0:
                self._record(Phase.FAILED, container.failure())
                return 1
        self._record(Phase.STARTING)
        server = self._start_server()
        sidecar = self._spawn(self.plan.sidecar)
        self._record(Phase.RUNNING)
        while not self.stop.requested:
            for container in (server, sidecar):
                if container.process.poll() is not None:
                    reason = container.failure()
                    self._shutdown(sidecar, server)
                    self._record(Phase.FAILED, reason)
                    return 1
            time.sleep(POLL_SECONDS)
        self._record(Phase.TERMINATING)
        self._shutdown(sidecar, server)
        self._record(Phase.STOPPED)
        return 0

    def _shutdown(self, sidecar: _Container, server: _Container) -> None:
        # Sidecar first, so nothing reconfigures or streams from a server that is going away.
        self._terminate(sidecar, SIDECAR_GRACE_SECONDS)
        self._terminate(server, SERVER_GRACE_SECONDS)

    def _terminate(self, container: _Container, grace: float) -> None:
        process = container.process
        if process.poll() is not None:
            return
        process.terminate()
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a stopped (hung) container must see it
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0fs; killing it", container.name, grace)
            process.kill()
            process.wait()
