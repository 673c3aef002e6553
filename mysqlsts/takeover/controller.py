"""The controller: observe → decide (pure) → act → report, one pass at a time.

Each decision becomes one sentence in the log; a takeover, a return and every skip also become an
Event on the node and a metric. In the long-running loop a node's decision is reported again
only when it changes (a guard holding for an hour is one report, not 360).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mysqlsts.kubeapi import API_FAILURES, describe_failure
from mysqlsts.takeover.decide import decide, manually_fenced, nodes_down
from mysqlsts.takeover.fence import run_fence_command
from mysqlsts.takeover.kube import ApiError, Kube
from mysqlsts.takeover.leader import Leadership, leadership
from mysqlsts.takeover.metrics import TakeoverMetrics
from mysqlsts.takeover.model import TAKEOVER_ACTIONS, Action, ClusterView, Decision, Settings

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Loop:
    interval: timedelta
    lease_duration: timedelta
    fence_command: Path | None
    fence_timeout: timedelta


class Controller:
    def __init__(self, kube: Kube, settings: Settings, loop: Loop, metrics: TakeoverMetrics,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.kube = kube
        self.settings = settings
        self.loop = loop
        self.metrics = metrics
        self.clock = clock
        self.leading = False
        self.last_observed: datetime | None = None  # last successful read of the cluster
        self.last_pass: datetime | None = None  # last pass that ended, well or not
        self._remembered: datetime | None = None  # our last takeover (a deleted Node's record)
        self._reported: dict[str, tuple[Action, str, Action | None]] = {}

    # --- one pass ------------------------------------------------------------------------

    def run_pass(self, report_all: bool = False) -> list[Decision]:
        """One reconcile pass; returns the decisions carried out (or skipped) as reported."""
        now = self.clock()
        try:
            self.leading = self._lead(now)
            self.metrics.leader.set(1 if self.leading and not self.settings.dry_run else 0)
            view = self.kube.observe()
            self.last_observed = now
            self.metrics.nodes_down.set(nodes_down(view, self.settings, now))
            if not self.leading:
                return []
            done = [self._act(d, view, now) for d in
                    decide(view, self.settings, now, self._remembered)]
            for decision in done:
                self._report(decision, now, report_all)
            return done
        finally:
            self.last_pass = self.clock()

    def _lead(self, now: datetime) -> bool:
        if self.settings.dry_run:
            return True  # a dry run writes nothing, the Lease included, and so never leads
        record = self.kube.read_lease()
        step = leadership(record, self.kube.identity, now)
        if step is Leadership.STANDBY:
            if self.leading or self.last_pass is None:
                log.info("standby: the Lease %s is held by %s", self.kube.lease_name,
                         record.holder if record else None)
            return False
        try:
            self.kube.write_lease(step, record, now, self.loop.lease_duration)
        except ApiError as exc:
            if exc.status == 409:  # another candidate wrote it first
                return False
            raise
        if not self.leading:
            log.info("leader: %s the Lease %s as %s", step, self.kube.lease_name,
                     self.kube.identity)
        return True

    def _proof(self, decision: Decision, view: ClusterView) -> Decision:
        """The fence command's word before a takeover (a person's fence counts as proof)."""
        command = self.loop.fence_command
        node = next(n for n in view.nodes if n.name == decision.node)
        if command is None or decision.action not in TAKEOVER_ACTIONS:
            return decision
        if manually_fenced(node):
            return decision
        off, why = run_fence_command(command, decision.node,
                                     self.loop.fence_timeout.total_seconds())
        if off:
            return replace(decision, reason=f"{decision.reason}; {why}")
        return Decision(decision.node, Action.SKIP, f"no proof the machine is off: {why}",
                        guard="fence", would=decision.action)

    def _act(self, decision: Decision, view: ClusterView, now: datetime) -> Decision:
        decision = self._proof(decision, view)
        node = next((n for n in view.nodes if n.name == decision.node), None)
        if node is None or decision.action in (Action.SKIP, Action.WAIT):
            return decision
        try:
            if decision.action is Action.TAINT:
                self.kube.taint(node, now)
            elif decision.action is Action.DELETE_PODS:
                self.kube.delete_pods(decision)
                self.kube.record(node, Action.DELETE_PODS, now)
            elif decision.action is Action.DELETE_NODE:
                self.kube.delete_node(node.name)
            elif decision.action is Action.UNTAINT:
                self.kube.untaint(node)
        except ApiError as exc:  # the next pass decides again from what the API then says
            self.metrics.actions.labels(str(decision.action), "error").inc()
            return replace(decision, error=f"{exc.status} {exc.reason}")
        if decision.action in TAKEOVER_ACTIONS:
            self._remembered = now
        self.metrics.actions.labels(str(decision.action), "ok").inc()
        return decision

    def _report(self, decision: Decision, now: datetime, report_all: bool) -> None:
        key = (decision.action, decision.guard, decision.would)
        if not report_all and self._reported.get(decision.node) == key:
            log.debug("%s", decision.sentence())
            return
        self._reported[decision.node] = key
        log.log(logging.WARNING if decision.error else logging.INFO, "%s", decision.sentence())
        if decision.action is Action.WAIT:
            return
        if decision.action is Action.SKIP:
            self.metrics.skips.labels(decision.guard).inc()

        if decision.guard == "dry-run":
            return  # a dry run writes nothing, Events included
        try:
            self.kube.event(decision, now)
        except ApiError as exc:  # an Event is a report, not the work: never fail a pass on it
            log.warning("node=%s event not recorded: %s %s", decision.node, exc.status,
                        exc.reason)

    # --- probes --------------------------------------------------------------------------

    def livez(self) -> tuple[bool, str]:
        """Alive while passes keep ending (well or not); a hung API call stops them."""
        now, stale = self.clock(), 3 * self.loop.interval + timedelta(seconds=30)
        if self.last_pass is not None and now - self.last_pass > stale:
            return False, f"no pass ended for {int((now - self.last_pass).total_seconds())}s"
        return True, "ok"

    def readyz(self) -> tuple[bool, str]:
        """Ready: the leader, or a standby whose view of the API is fresh."""
        now = self.clock()
        if self.last_observed is None or now - self.last_observed > 3 * self.loop.interval:
            return False, "no recent view of the API"
        return True, "leader" if self.leading else "standby"

    # --- the loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.run_pass()
            except Exception as exc:  # the loop edge: log, keep going, probes tell the rest
                log.warning("pass failed: %s: %s", type(exc).__name__, exc)
            stop.wait(self.loop.interval.total_seconds())
        self._release()

    def _release(self) -> None:
        """On the way out (SIGTERM: a rollout, a drain), hand the Lease over now."""
        if not self.leading or self.settings.dry_run:
            return
        try:
            if self.kube.release_lease():
                log.info("released the Lease %s", self.kube.lease_name)
        except API_FAILURES as exc:  # it expires on its own after its duration
            log.warning("could not release the Lease %s: %s", self.kube.lease_name,
                        describe_failure(exc))
        self.leading = False
