"""The controller: observe → decide (pure) → act → report, one pass at a time.

Each decision becomes one sentence in the log; a takeover, a return and every skip also become an
Event on the node and a metric. In the long-running loop a node's decision is reported again
only when it changes (a guard holding for an hour is one report, not 360).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mysqlsts.kubeapi import API_FAILURES, describe_failure
from mysqlsts.takeover.decide import decide, nodes_down, recheck_lease
from mysqlsts.takeover.fence import lease_window_problem, run_fence_command
from mysqlsts.takeover.kube import ApiError, TakeoverApi
from mysqlsts.takeover.leader import Elector, Leadership, LeaseRecord
from mysqlsts.takeover.metrics import TakeoverMetrics
from mysqlsts.takeover.model import (
    TAKEOVER_ACTIONS,
    Action,
    ClusterView,
    Decision,
    HistoryEntry,
    NodeView,
    Settings,
    history_after,
)
from mysqlsts.takeover.silence import (
    LeaseWatch,
    SilenceWatch,
    lease_quiet_by_control_plane,
    silence_by_control_plane,
)

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Loop:
    interval: timedelta
    lease_duration: timedelta
    renew_deadline: timedelta  # shorter than lease_duration: we stop before others may start
    fence_command: Path | None
    fence_timeout: timedelta
    # One pass only (`--once`): silence is judged from the control plane's own stamps, since
    # one observation cannot watch anything change.
    once: bool = False


class LostLeadership(Exception):
    """The Lease is not ours any more (or not provably): no further write in this pass."""


class Controller:
    def __init__(self, api: TakeoverApi, settings: Settings, loop: Loop,
                 metrics: TakeoverMetrics, clock: Callable[[], datetime] = utc_now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.api = api
        self.settings = settings
        self.loop = loop
        self.metrics = metrics
        self.clock = clock
        self.monotonic = monotonic
        self.elector = Elector(api.identity, loop.renew_deadline)
        self.silence = SilenceWatch()
        self.primary = LeaseWatch()
        self._window_problem: str | None = None  # last logged, so it is logged when it changes
        self.lease: LeaseRecord | None = None  # as last read or written
        self.last_observed: datetime | None = None  # last successful read of the cluster
        self.last_pass: datetime | None = None  # last pass that ended, well or not
        self._reported: dict[str, tuple[Action, str, Action | None]] = {}

    @property
    def leading(self) -> bool:
        # A dry run writes nothing, the Lease included, and decides as if it led.
        return self.settings.dry_run or self.elector.leading(self.monotonic())

    # --- one pass ------------------------------------------------------------------------

    def run_pass(self, report_all: bool = False) -> list[Decision]:
        """One reconcile pass; returns the decisions carried out (or skipped) as reported."""
        now = self.clock()
        try:
            self._lead(now)
            self.metrics.leader.set(1 if self.leading and not self.settings.dry_run else 0)
            observed = self.api.observe()
            view = observed.view
            self.last_observed = now
            if self.loop.once:
                # No Date header: no control-plane clock to judge by, so no silence at all.
                silent = ({} if observed.api_time is None else
                          silence_by_control_plane(view.nodes, observed.api_time))
                lease_quiet = lease_quiet_by_control_plane(view.primary_lease, observed.api_time)
            else:
                observed_at = self.monotonic()
                silent = self.silence.observe(view.nodes, observed_at)
                lease_quiet = self.primary.observe(view.primary_lease, observed_at)
            self._check_window(view)
            self.metrics.nodes_down.set(nodes_down(view, self.settings, silent))
            if not self.leading:
                return []
            history = self.lease.history if self.lease else ()
            done: list[Decision] = []
            for decision in decide(view, self.settings, now, silent, history, lease_quiet):
                try:
                    done.append(self._act(decision, view, now))
                except LostLeadership as exc:
                    log.warning("leadership lost, stopping the pass: %s", exc)
                    done.append(Decision(decision.node, Action.SKIP, f"not the leader any more: "
                                         f"{exc}", guard="leadership", would=decision.action))
                    break
            for decision in done:
                self._report(decision, view, now, report_all)
            return done
        finally:
            self.last_pass = self.clock()

    def _check_window(self, view: ClusterView) -> None:
        """The sidecars' window may have grown since start (read from the primary Lease):
        logged when it changes. Safety does not depend on it: the `lease` guard waits for the
        Lease's own window whatever --node-down-after says."""
        lease = view.primary_lease
        problem = None if lease is None else lease_window_problem(
            self.settings.node_down_after, lease, self.settings.lease_margin)
        if problem and problem != self._window_problem:
            log.warning("%s: takeovers of its holder's node wait for the Lease's window", problem)
        self._window_problem = problem

    def _lead(self, now: datetime) -> None:
        if self.settings.dry_run:
            return  # a dry run writes nothing, the Lease included
        started = self.monotonic()
        was_leading = self.elector.leading(started)
        record = self.api.read_lease()
        step = self.elector.step(record, started)
        if step is Leadership.STANDBY:
            self.elector.lost()
            self.lease = record
            if was_leading or self.last_pass is None:
                log.info("standby: the Lease %s is held by %s", self.api.lease_name,
                         record.holder if record else None)
            return
        try:
            self.lease = self.api.write_lease(step, record, now, self.loop.lease_duration)
        except ApiError as exc:
            self.elector.lost()
            self.lease = record
            if exc.status == 409:  # another candidate wrote it first
                return
            raise
        self.elector.renewed(started)
        if not was_leading:
            log.info("leader: %s the Lease %s as %s", step, self.api.lease_name,
                     self.api.identity)

    def _confirm(self, entry: HistoryEntry | None = None) -> None:
        """Immediately before a write: still within the renew deadline, and the Lease renewed
        as we last wrote it (compare-and-swap), with `entry` added to the history first. A
        takeover is thus recorded (and its cooldown set) before it happens, and nothing is
        written by a replica that lost the Lease."""
        started = self.monotonic()
        if not self.elector.leading(started) or self.lease is None:
            raise LostLeadership("the Lease was not renewed within the renew deadline")
        history = None if entry is None else history_after(self.lease.history, entry)
        try:
            self.lease = self.api.write_lease(Leadership.RENEW, self.lease, self.clock(),
                                              self.loop.lease_duration, history)
        except API_FAILURES as exc:
            self.elector.lost()
            raise LostLeadership(f"renewing the Lease failed: {describe_failure(exc)}") from exc
        self.elector.renewed(started)

    def _proof(self, decision: Decision, node: NodeView) -> Decision:
        """The fence command's word before a takeover (a person's fence counts as proof)."""
        command = self.loop.fence_command
        if command is None or decision.action not in TAKEOVER_ACTIONS:
            return decision
        if node.fenced_now():
            return decision
        off, why = run_fence_command(command, decision.node,
                                     self.loop.fence_timeout.total_seconds())
        if off:
            return replace(decision, reason=f"{decision.reason}; {why}")
        return Decision(decision.node, Action.SKIP, f"no proof the machine is off: {why}",
                        guard="fence", would=decision.action)

    def _act(self, decision: Decision, view: ClusterView, now: datetime) -> Decision:
        node = next((n for n in view.nodes if n.name == decision.node), None)
        if node is None or decision.action in (Action.SKIP, Action.WAIT):
            return decision
        decision = self._proof(decision, node)
        if decision.action is Action.SKIP:
            return decision
        takeover = decision.action in TAKEOVER_ACTIONS
        self._confirm(HistoryEntry(node.name, decision.action, now) if takeover else None)
        if takeover and decision.lease_version is not None:
            # Decided on the Lease as this pass first read it: read it again now, just
            # before the first write, in case its holder renewed it meanwhile.
            decision = recheck_lease(decision, self.api.read_primary_lease())
            if decision.action is Action.SKIP:
                return decision
        try:
            if decision.action is Action.TAINT:
                self.api.taint(node, now)
            elif decision.action is Action.DELETE_PODS:
                self._delete_pods(decision, view, node, now)
            elif decision.action is Action.DELETE_NODE:
                self.api.delete_node(node)
            elif decision.action is Action.UNTAINT:
                self.api.untaint(node)
            elif decision.action is Action.UNFENCE:
                self.api.unfence(node)
        except API_FAILURES as exc:  # the next pass decides again from what the API then says
            why = describe_failure(exc)
            self.metrics.actions.labels(str(decision.action), "error").inc()
            return Decision(decision.node, Action.SKIP, f"the API refused or failed: {why}",
                            guard="api", would=decision.action, error=why)
        self.metrics.actions.labels(str(decision.action), "ok").inc()
        return decision

    def _delete_pods(self, decision: Decision, view: ClusterView, node: NodeView,
                     now: datetime) -> None:
        """Each delete is a write of its own: leadership is confirmed before every one."""
        for index, pod in enumerate(decision.pods):
            if index:
                self._confirm()
            self.api.delete_pod(pod)
        for attachment in (a for a in view.attachments if a.name in decision.attachments):
            self._confirm()
            self.api.delete_attachment(attachment)
        self._confirm()
        self.api.record(node, Action.DELETE_PODS, now)

    def _report(self, decision: Decision, view: ClusterView, now: datetime,
                report_all: bool) -> None:
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

        if self.settings.dry_run or not self.elector.leading(self.monotonic()):
            return  # a dry run writes nothing, and a replica that lost the Lease neither
        uid = next((n.uid for n in view.nodes if n.name == decision.node), "")
        try:
            self.api.event(decision, uid, now)
        except API_FAILURES as exc:  # an Event is a report, not the work: never fail a pass
            log.warning("node=%s event not recorded: %s", decision.node, describe_failure(exc))

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
        self.release()

    def release(self) -> None:
        """On the way out (SIGTERM: a rollout, a drain; the end of `--once`), hand the Lease
        over now."""
        if self.settings.dry_run or not self.elector.leading(self.monotonic()):
            return
        self.elector.lost()
        try:
            if self.api.release_lease(self.lease):
                log.info("released the Lease %s", self.api.lease_name)
        except API_FAILURES as exc:  # it expires on its own after its duration
            log.warning("could not release the Lease %s: %s", self.api.lease_name,
                        describe_failure(exc))
