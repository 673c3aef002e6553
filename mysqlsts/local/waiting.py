"""Waiting for the supervisor: until the set has converged (`up`, `scale`) or one pod has
reached a goal (`stop`, `start`), and giving up early when waiting cannot help: a pod keeps
failing, or the supervisor is gone."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from mysqlsts.errors import MysqlstsError
from mysqlsts.local import render
from mysqlsts.local.daemon import supervisor_gone
from mysqlsts.local.reconcile import Act
from mysqlsts.local.records import SupervisorPodState
from mysqlsts.local.render import PodObservation
from mysqlsts.local.spec import SetLayout, SetSpec
from mysqlsts.local.store import read_pod_record, read_state, write_spec

log = logging.getLogger(__name__)

# Consecutive failures of one pod after which `up`/`scale` stop waiting and report it.
GIVE_UP_AFTER_FAILURES = 3


def _give_up_if_hopeless(layout: SetLayout, spec: SetSpec,
                         pods: Mapping[int, SupervisorPodState], since: float) -> None:
    for ordinal, pod in pods.items():
        # Failures from before this wait (an earlier `up`) do not count against it.
        if pod.failures >= GIVE_UP_AFTER_FAILURES and (pod.failed_at or 0) >= since:
            raise MysqlstsError(
                f"{spec.pod_name(ordinal)} failed {pod.failures} times: {pod.last_end}"
            )
    gone = supervisor_gone(layout)
    if gone is not None:
        raise gone


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
        _give_up_if_hopeless(layout, spec, pods, since)
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


def _pending_reason(layout: SetLayout, spec: SetSpec,
                    pods: Mapping[int, SupervisorPodState]) -> str:
    """The first pod that is not ready, and why it is not now (not why an earlier one ended)."""
    now = time.time()
    for ordinal in range(spec.replicas):
        pod = pods.get(ordinal)
        if pod is None or not (pod.ready or pod.kept_down):
            seen = PodObservation(
                ordinal, alive=pod is not None and pod.alive, ready=False,
                record=read_pod_record(layout.pod(spec.pod_name(ordinal))), supervised=pod,
                not_ready=pod.not_ready if pod else None,
            )
            why = render.reason(seen, now)
            return f"; {spec.pod_name(ordinal)} is {render.phase(seen, now)}" + (
                f": {why}" if why else ""
            )
    return ""


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


def wait_for_pod(
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
        _give_up_if_hopeless(layout, spec, {ordinal: pod} if pod is not None else {}, since)
        if time.monotonic() > deadline:
            why = (pod.not_ready or pod.last_end) if pod is not None else None
            raise MysqlstsError(f"{name} is not {goal} after {timeout:.0f}s"
                                + (f": {why}" if why else ""))
        time.sleep(0.3)
