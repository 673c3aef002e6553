"""The pure decision core: a view of the cluster, the settings and `now` → one decision per node.

Safety lives in data, not in scattered `if`s: each guard is a named rule evaluated, in order,
before any action, and a guard that stops an action turns it into a SKIP that is reported exactly
like an action (log line, Event, metric). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mysqlsts.takeover.model import (
    EXCLUDE_LABEL,
    FENCED_ANNOTATION,
    PAUSE_ANNOTATION,
    TAINT_MIN_VERSION,
    TAKEOVER_ACTIONS,
    Action,
    ClusterView,
    Decision,
    NodeView,
    Settings,
)


def _seconds(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


def not_ready_for(node: NodeView, now: datetime) -> timedelta | None:
    """How long the node has not been Ready; None while it is Ready (or says nothing)."""
    if node.ready == "True" or node.ready_since is None:
        return None
    return now - node.ready_since


def lease_silent_for(node: NodeView, now: datetime) -> timedelta:
    # A node without a Lease has never renewed one: as silent as can be.
    return timedelta.max if node.lease_renewed is None else now - node.lease_renewed


def manually_fenced(node: NodeView) -> bool:
    return FENCED_ANNOTATION in node.annotations


def is_down(node: NodeView, settings: Settings, now: datetime) -> bool:
    """Down: not Ready and its Lease not renewed, both for `node_down_after`; or not Ready and a
    person confirmed (`takeover fence`) that the machine is off."""
    silent = not_ready_for(node, now)
    if silent is None:
        return False
    if manually_fenced(node):
        return True
    window = settings.node_down_after
    return silent >= window and lease_silent_for(node, now) >= window


@dataclass(frozen=True)
class Context:
    view: ClusterView
    settings: Settings
    now: datetime
    down: frozenset[str]
    last_action: datetime | None  # the latest takeover, from the nodes' records or memory


Guard = Callable[[Context, NodeView], str | None]


def _paused(ctx: Context, node: NodeView) -> str | None:
    if ctx.view.paused:
        return f"the set's namespace carries the annotation {PAUSE_ANNOTATION}"
    return None


def _excluded(ctx: Context, node: NodeView) -> str | None:
    if EXCLUDE_LABEL in node.labels:
        return f"the node carries the label {EXCLUDE_LABEL}"
    return None


def _max_unhealthy(ctx: Context, node: NodeView) -> str | None:
    down, total, limit = len(ctx.down), len(ctx.view.nodes), ctx.settings.max_unhealthy
    if down > limit or 2 * down > total:
        return (
            f"{down} of {total} nodes are down (at most {limit} and never more than half): "
            "a partition or an API problem is likelier than dead machines"
        )
    return None


def _version(ctx: Context, node: NodeView) -> str | None:
    if ctx.settings.action is Action.TAINT and ctx.view.version < TAINT_MIN_VERSION:
        have = ".".join(map(str, ctx.view.version))
        need = ".".join(map(str, TAINT_MIN_VERSION))
        return (
            f"the API server is {have}; the out-of-service taint needs {need} "
            "(use --action delete-pods on older clusters)"
        )
    return None


def _local_volume(ctx: Context, node: NodeView) -> str | None:
    pinned = [p.name for p in ctx.view.pods_on(node.name) if node.name in p.pinned_to]
    if pinned:
        return (
            f"{', '.join(pinned)} keep their data on a volume of this node (local PV): "
            "moving them cannot bring the data; restore the node or replace the pod by hand"
        )
    return None


def _cooldown(ctx: Context, node: NodeView) -> str | None:
    if ctx.last_action is None:
        return None
    since = ctx.now - ctx.last_action
    if since < ctx.settings.cooldown:
        return (
            f"the last takeover was {_seconds(since)} ago; one per "
            f"{_seconds(ctx.settings.cooldown)}"
        )
    return None


def _dry_run(ctx: Context, node: NodeView) -> str | None:
    return "dry run: nothing is written" if ctx.settings.dry_run else None


# Evaluated in this order before any takeover; the first that objects names the skip.
TAKEOVER_GUARDS: tuple[tuple[str, Guard], ...] = (
    ("paused", _paused),
    ("excluded", _excluded),
    ("max-unhealthy", _max_unhealthy),
    ("version", _version),
    ("local-volume", _local_volume),
    ("cooldown", _cooldown),
    ("dry-run", _dry_run),
)
# Giving a returned node back only needs the operator's consent.
RETURN_GUARDS: tuple[tuple[str, Guard], ...] = (("paused", _paused), ("dry-run", _dry_run))


def _guarded(ctx: Context, node: NodeView, wanted: Decision,
             guards: tuple[tuple[str, Guard], ...]) -> Decision:
    for name, guard in guards:
        objection = guard(ctx, node)
        if objection:
            return Decision(node.name, Action.SKIP, objection, guard=name, would=wanted.action)
    return wanted


def _takeover(ctx: Context, node: NodeView) -> Decision:
    action = ctx.settings.action
    pods = ctx.view.pods_on(node.name)
    names = ", ".join(p.name for p in pods)
    silent = not_ready_for(node, ctx.now) or timedelta(0)
    proof = (
        "a person confirmed the machine is off (takeover fence)" if manually_fenced(node) else
        f"not Ready for {_seconds(silent)} and its Lease silent as long"
    )
    if action is Action.DELETE_PODS:
        volumes = {v for p in pods for v in p.volumes}
        attachments = tuple(
            a.name for a in ctx.view.attachments if a.node == node.name and a.volume in volumes
        )
        return Decision(node.name, action, f"{proof}; force-deleting {names}", pods=pods,
                        attachments=attachments)
    verb = {Action.TAINT: "tainting out-of-service", Action.DELETE_NODE: "deleting the Node"}
    return Decision(node.name, action, f"{proof}; {verb[action]} to move {names}")


def _node_decision(ctx: Context, node: NodeView) -> Decision | None:
    record = node.record()
    pods = ctx.view.pods_on(node.name)
    if node.ready == "True":
        if record is None:
            return None
        ready_for = ctx.now - node.ready_since if node.ready_since else timedelta(0)
        if ready_for < ctx.settings.healthy_after:
            return Decision(node.name, Action.WAIT,
                            f"Ready again for {_seconds(ready_for)}; giving it back after "
                            f"{_seconds(ctx.settings.healthy_after)}")
        if pods:
            return Decision(node.name, Action.WAIT,
                            f"Ready, but {', '.join(p.name for p in pods)} still bound to it")
        what = "removing our out-of-service taint" if record.taint_added else "clearing our record"
        wanted = Decision(node.name, Action.UNTAINT,
                          f"Ready for {_seconds(ready_for)} and no pod of the set on it; {what}")
        return _guarded(ctx, node, wanted, RETURN_GUARDS)
    if record is not None:
        return Decision(node.name, Action.WAIT,
                        f"taken over ({record.action}) at {record.at.isoformat()}; "
                        "waiting for it to return")
    if not pods:
        return None
    if node.name not in ctx.down:
        silent = not_ready_for(node, ctx.now) or timedelta(0)
        lease = lease_silent_for(node, ctx.now)
        lease_text = "never renewed" if lease == timedelta.max else f"renewed {_seconds(lease)} ago"
        return Decision(node.name, Action.WAIT,
                        f"not Ready for {_seconds(silent)}, Lease {lease_text}; acting when both "
                        f"reach {_seconds(ctx.settings.node_down_after)}")
    return _guarded(ctx, node, _takeover(ctx, node), TAKEOVER_GUARDS)


def last_takeover(view: ClusterView, remembered: datetime | None) -> datetime | None:
    """The latest takeover: from the nodes' records (they survive a restart or a new leader)
    and from memory (a deleted Node takes its record with it)."""
    times = [r.at for n in view.nodes if (r := n.record()) and r.action in TAKEOVER_ACTIONS]
    if remembered is not None:
        times.append(remembered)
    return max(times, default=None)


def decide(view: ClusterView, settings: Settings, now: datetime,
           remembered: datetime | None = None) -> list[Decision]:
    """One decision per node that needs one, in node-name order. At most one takeover per call:
    once one is decided, the cooldown guard holds back the rest."""
    down = frozenset(n.name for n in view.nodes if is_down(n, settings, now))
    ctx = Context(view, settings, now, down, last_takeover(view, remembered))
    decisions = []
    for node in sorted(view.nodes, key=lambda n: n.name):
        decision = _node_decision(ctx, node)
        if decision is None:
            continue
        decisions.append(decision)
        if decision.action in TAKEOVER_ACTIONS and settings.cooldown > timedelta(0):
            ctx = Context(view, settings, now, down, now)
    return decisions


def nodes_down(view: ClusterView, settings: Settings, now: datetime) -> int:
    return sum(1 for n in view.nodes if is_down(n, settings, now))
