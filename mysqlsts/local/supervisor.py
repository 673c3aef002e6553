"""The supervisor: the StatefulSet controller and the kubelet of a local set, as a daemon.

Each cycle observes the pods once, asks `reconcile.decide` for one action, acts, and writes
what it saw to DIR/state.json for `local status`, `up` and `scale`. Desired replicas are
re-read from DIR/spec.json every cycle, so `scale` only has to rewrite that file.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from types import FrameType

from mysqlsts.adapters.fs import atomic_write
from mysqlsts.adapters.process import ProcessGroup
from mysqlsts.adapters.readyz import probe_readiness
from mysqlsts.errors import ConfigError
from mysqlsts.local.reconcile import Act, CrashLoop, Decision, Observed, decide
from mysqlsts.local.records import Phase, SupervisorPodState, SupervisorState
from mysqlsts.local.spec import HOST, SetLayout, SetSpec
from mysqlsts.local.store import load_spec, pod_records, read_pod_record, write_state

log = logging.getLogger(__name__)

CYCLE_SECONDS = 0.5
TERMINATE_GRACE_SECONDS = 150.0


@dataclass
class _PodTracker:
    """The supervisor's live, mutable memory of one ordinal across the pod processes it creates;
    each cycle publishes it as a `SupervisorPodState` in state.json."""

    group: ProcessGroup | None = None  # the pod process's group, ours or adopted
    restarts: int = 0
    failures: int = 0  # ends in a row without becoming ready: `up` gives up after a few
    crash_loop: CrashLoop = field(default_factory=CrashLoop)
    last_end: str | None = None  # why the last pod process ended
    failed_at: float | None = None
    terminate_by: float | None = None
    ready: bool = False
    not_ready: str | None = None  # the live pod's readiness answer
    kept_down: bool = False


def _pod_command(tool: tuple[str, ...], layout: SetLayout, ordinal: int) -> list[str]:
    return [*tool, "local", "_pod", "--dir", str(layout.root), "--ordinal", str(ordinal)]


class Supervisor:
    def __init__(self, layout: SetLayout, tool: tuple[str, ...]) -> None:
        self.layout = layout
        self.tool = tool
        self.marker = str(layout.root)
        self.pods: dict[int, _PodTracker] = {}
        self.stopping = False
        self.last_sentence = ""
        self.spec_problem = ""

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def _spec(self, previous: SetSpec) -> SetSpec:
        """The spec as `up`/`scale` last wrote it; a damaged one keeps the set as it was."""
        try:
            spec = load_spec(self.layout)
        except ConfigError as exc:
            if str(exc) != self.spec_problem:
                log.warning("keeping replicas=%d: %s", previous.replicas, exc)
                self.spec_problem = str(exc)
            return previous
        self.spec_problem = ""
        return spec

    def _adopt(self) -> None:
        """Pods left running by an earlier supervisor keep running; watch them by pid."""
        for ordinal, record in pod_records(self.layout).items():
            group = ProcessGroup.adopt(record.pid, self.marker)
            if group.running():
                self.pods[ordinal] = _PodTracker(group=group)
                log.info("adopted running pod ordinal=%d pid=%d", ordinal, record.pid)

    def _reap(self, spec: SetSpec, ordinal: int, pod: _PodTracker, now: float) -> None:
        """A pod process ended: a stop we asked for, a failure it recorded, or a kill."""
        # A leader that died alone (an exception, a kill of its pid only) leaves its server and
        # sidecar holding the pod's ports; the pod's process group goes with it, as in a kubelet.
        group = pod.group
        assert group is not None
        group.kill()
        code = group.reap()
        record = read_pod_record(self.layout.pod(spec.pod_name(ordinal)))
        if pod.terminate_by is not None:
            log.info("pod ordinal=%d stopped", ordinal)
        else:
            if record is not None and record.pid == group.pid and record.phase is Phase.FAILED:
                pod.last_end = record.reason or "the pod failed"
            else:
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                pod.last_end = f"pod process ended unexpectedly ({how})"
            pod.failures += 1
            pod.restarts += 1
            pod.failed_at = now
            pod.crash_loop = pod.crash_loop.ended(now)
            log.warning("pod ordinal=%d ended (%d in a row; back-off %.0fs): %s", ordinal,
                        pod.failures, pod.crash_loop.not_before - now, pod.last_end)
        pod.group, pod.terminate_by, pod.ready = None, None, False

    def _observe(self, spec: SetSpec, now: float) -> dict[int, Observed]:
        peers = spec.peers()
        observed: dict[int, Observed] = {}
        for ordinal in sorted(set(range(spec.replicas)) | set(self.pods)):
            pod = self.pods.setdefault(ordinal, _PodTracker())
            pod.kept_down = self.layout.pod(spec.pod_name(ordinal)).keep_down.exists()
            if pod.group is not None and not pod.group.running():
                self._reap(spec, ordinal, pod, now)
            alive = pod.group is not None
            probe = probe_readiness(HOST, peers.address(ordinal).http_port) if alive else None
            pod.ready = probe is not None and probe.ready
            pod.not_ready = probe.reason if probe is not None else None
            if pod.ready:
                pod.failures, pod.last_end = 0, None
            pod.crash_loop = pod.crash_loop.seen(pod.ready, now)
            observed[ordinal] = Observed(
                ordinal, alive=alive, ready=pod.ready,
                terminating=pod.terminate_by is not None, not_before=pod.crash_loop.not_before,
                kept_down=pod.kept_down,
            )
        return observed

    def _act(self, decision: Decision, spec: SetSpec, now: float) -> None:
        if decision.ordinal is None:
            return
        pod = self.pods[decision.ordinal]
        if decision.act is Act.CREATE:
            paths = self.layout.pod(spec.pod_name(decision.ordinal))
            paths.logs.mkdir(parents=True, exist_ok=True)
            with paths.log("pod").open("ab") as handle:
                pod.group = ProcessGroup.start(
                    _pod_command(self.tool, self.layout, decision.ordinal), new_session=True,
                    stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                )
        elif decision.act is Act.TERMINATE and pod.group is not None:
            # To the leader only: it stops the sidecar first, then the server (pod.py).
            pod.group.terminate(leader_only=True)
            pod.terminate_by = now + TERMINATE_GRACE_SECONDS
        elif (decision.act is Act.WAIT and pod.terminate_by is not None
              and pod.group is not None and now > pod.terminate_by):
            log.warning("pod ordinal=%d ignored SIGTERM; killing it", decision.ordinal)
            pod.group.kill()

    def _publish(self, spec: SetSpec, decision: Decision, now: float) -> None:
        write_state(self.layout, SupervisorState(
            supervisor_pid=os.getpid(),
            desired=spec.replicas,
            stopping=self.stopping,
            decision=decision.sentence(),
            act=decision.act,
            updated_at=now,
            pods={ordinal: SupervisorPodState(
                alive=pod.group is not None,
                pid=pod.group.pid if pod.group is not None else None,
                ready=pod.ready,
                restarts=pod.restarts,
                failures=pod.failures,
                last_end=pod.last_end,
                not_ready=pod.not_ready,
                kept_down=pod.kept_down,
                failed_at=pod.failed_at,
                terminating=pod.terminate_by is not None,
                back_off_until=(pod.crash_loop.not_before
                                if pod.group is None and pod.crash_loop.not_before > now else None),
            ) for ordinal, pod in sorted(self.pods.items())},
        ))

    def run(self) -> int:
        lock = self.layout.supervisor_lock.open("a")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("another supervisor already runs for %s", self.layout.root)
            return 0
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        atomic_write(self.layout.supervisor_pid, f"{os.getpid()}\n")
        log.info("supervisor started pid=%d dir=%s", os.getpid(), self.layout.root)
        self._adopt()
        spec = load_spec(self.layout)
        while True:
            now = time.time()
            spec = self._spec(spec)
            try:
                decision = decide(spec.replicas, self.stopping, self._observe(spec, now), now)
                self._act(decision, spec, now)
                self._publish(spec, decision, now)
            except Exception:  # the loop's edge: a bug or a full disk must not orphan the pods
                log.exception("supervisor cycle failed; retrying")
                time.sleep(CYCLE_SECONDS)
                continue
            if decision.sentence() != self.last_sentence:
                log.info("%s", decision.sentence())
                self.last_sentence = decision.sentence()
            if decision.act is Act.DONE:
                break
            time.sleep(CYCLE_SECONDS)
        self.layout.supervisor_pid.unlink(missing_ok=True)
        log.info("supervisor stopped")
        return 0
