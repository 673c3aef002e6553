"""The pure decision core: a view of the cluster, the settings and `now` → one decision per node.

Safety lives in data, not in scattered `if`s: each guard is a named rule evaluated, in order,
before any action, and a guard that stops an action turns it into a SKIP that is reported exactly
like an action (log line, Event, metric). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
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
    HistoryEntry,
    NodeView,
    PodView,
    PrimaryLease,
    Settings,
)


def _seconds(delta: timedelta) -> str:
    return f"{int(delta.total_seconds())}s"


def is_down(node: NodeView, settings: Settings, silent: Mapping[str, timedelta]) -> bool:
    """Down: Ready is Unknown (the node lifecycle controller's verdict that the kubelet went
    silent; Ready=False is a living kubelet and never enough), and either a person confirmed
    that the machine is off for this outage, or it has stayed Unknown with its node Lease
    unchanged for `node_down_after` on a trusted clock (`silent`, measured by the caller on
    the controller's monotonic clock or the control plane's stamps, never the kubelet's)."""
    if node.ready != "Unknown":
        return False
    if node.fenced_now():
        return True
    return silent.get(node.name, timedelta(0)) >= settings.node_down_after


def deleted_nodes(view: ClusterView, history: tuple[HistoryEntry, ...]) -> frozenset[str]:
    """Nodes we deleted that have not registered again: still unhealthy for the guard."""
    present = {n.name for n in view.nodes}
    return frozenset(e.node for e in history
                     if e.action is Action.DELETE_NODE and e.node not in present)


def unhealthy(view: ClusterView, history: tuple[HistoryEntry, ...]) -> tuple[int, int]:
    """(unhealthy, total) as the node lifecycle controller counts them: every node that is
    not Ready, whatever for how long, plus the nodes we deleted."""
    gone = deleted_nodes(view, history)
    bad = sum(1 for n in view.nodes if n.ready != "True") + len(gone)
    return bad, len(view.nodes) + len(gone)


@dataclass(frozen=True)
class Context:
    view: ClusterView
    settings: Settings
    now: datetime
    silent: Mapping[str, timedelta]
    down: frozenset[str]
    unhealthy: tuple[int, int]  # (not Ready or deleted by us, all nodes)
    last_action: datetime | None  # the latest takeover, from the nodes' records or the history
    # How long the primary Lease has been unchanged on a trusted clock; None: not measurable.
    lease_quiet: timedelta | None = None


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
    (bad, total), limit = ctx.unhealthy, ctx.settings.max_unhealthy
    if bad > limit or 2 * bad > total:
        return (
            f"{bad} of {total} nodes are not Ready or deleted by us (at most {limit} and never "
            "more than half): a partition or an API problem is likelier than dead machines"
        )
    return None


def _unreadable(ctx: Context, node: NodeView) -> str | None:
    failed = [f"{p.name}: {p.unreadable}" for p in ctx.view.pods_on(node.name) if p.unreadable]
    if failed:
        return f"could not read what its pods store: {'; '.join(failed)}"
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


def _power_fenced(ctx: Context, node: NodeView) -> bool:
    """The machine is proven off (a person's fence for this outage), or will be before any
    write (a --fence-command, which the controller runs and requires before acting)."""
    return ctx.settings.power_fence or node.fenced_now()


def _holder(ctx: Context) -> PodView | None:
    """The live set pod that holds the primary Lease: its name and uid both match (a holder
    that names no uid cannot be told from a replacement of the same name)."""
    lease = ctx.view.primary_lease
    if lease is None or not lease.holder:
        return None
    name, uid = lease.holder_pod()
    return next((p for p in ctx.view.pods if uid and (p.name, p.uid) == (name, uid)), None)


def _lease_check(ctx: Context, node: NodeView) -> tuple[str | None, str]:
    """(objection, proof) of the primary Lease for moving `node`'s pods on the default proof.

    The Lease's holder is the one server that may be writable. If it is a live pod bound to
    another node, moving this node's pods moves no writable server (they are replicas: the
    storage guard's business). Otherwise (the holder is here, or we cannot tell where it runs,
    or nobody holds it) the Lease must have stayed unchanged for its duration + the holders'
    self-fence + margin on a trusted clock: then whoever held it has stopped its server."""
    lease = ctx.view.primary_lease
    if lease is None:
        return "the primary Lease was not read", ""
    if lease.problem:
        return lease.problem, ""
    holder = _holder(ctx)
    if holder is not None and holder.node not in (None, node.name):
        return None, ""
    if holder is not None and holder.node == node.name:
        who = f"its holder {lease.holder} is on this node"
    elif lease.holder:
        who = (f"its holder {lease.holder} is not a live pod of the set bound to another node "
               "(it may still run anywhere, here too)")
    else:
        who = "it is free (its last holder released it or let it lapse)"
    window = lease.window(ctx.settings.lease_margin)
    how = (f"its duration {_seconds(lease.duration)} + self-fence "
           f"{lease.self_fence.total_seconds():g}s + margin {_seconds(ctx.settings.lease_margin)}")
    quiet = ctx.lease_quiet
    if quiet is None:
        return (f"the primary Lease {lease.where}: {who}, and how long it has been unchanged "
                "cannot be measured (one pass needs kube-apiserver's managedFields stamp and "
                "Date)"), ""
    if quiet < window:
        return (f"the primary Lease {lease.where} changed {_seconds(quiet)} ago: {who}; it "
                f"must stay unchanged for {window.total_seconds():g}s ({how}) before its "
                "holder has provably stopped writing"), ""
    return None, (f"the primary Lease ({lease.holder or 'free'}) unchanged for "
                  f"{_seconds(quiet)} >= {window.total_seconds():g}s")


def _lease(ctx: Context, node: NodeView) -> str | None:
    if _power_fenced(ctx, node):
        return None
    return _lease_check(ctx, node)[0]


def _storage(ctx: Context, node: NodeView) -> str | None:
    """Pods with no self-fence (all but the proven Lease holder: replicas) may still run and
    write their data dir; moving them is safe only where the driver's force-detach cuts the
    old node off the volume."""
    if _power_fenced(ctx, node):
        return None
    # Checked after `lease`: a holder on this node has been proven fenced by now.
    holder = _holder(ctx)
    allowed = ctx.settings.detach_fenced_drivers
    unsafe = [f"{p.name} ({s.describe()})" for p in ctx.view.pods_on(node.name)
              if p is not holder for s in p.sources if s.driver not in allowed]
    if not unsafe:
        return None
    drivers = ", ".join(sorted(allowed)) or "none"
    return (f"{', '.join(unsafe)}: a pod that holds no primary Lease has no self-fence and may "
            "still write its volume, and a force-detach by this storage does not cut the old "
            f"node off it (--detach-fenced-drivers: {drivers}); power-fence the machine")


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
    ("unreadable", _unreadable),
    ("local-volume", _local_volume),
    ("lease", _lease),
    ("storage", _storage),
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
    silent = ctx.silent.get(node.name, timedelta(0))
    fence = node.fence()
    proof = (
        f"{fence.by} confirmed the machine is off for this outage (takeover fence)"
        if fence is not None and node.fenced_now() else
        f"Ready=Unknown and its Lease unchanged for {_seconds(silent)}"
    )
    lease_version = None
    if not _power_fenced(ctx, node):
        if lease_proof := _lease_check(ctx, node)[1]:
            proof = f"{proof}; {lease_proof}"
        # Never unread here (the guard skips first); if it were, no re-read could match.
        lease = ctx.view.primary_lease
        lease_version = lease.resource_version if lease is not None else ""
    if action is Action.DELETE_PODS:
        volumes = {v for p in pods for v in p.volumes}
        attachments = tuple(
            a.name for a in ctx.view.attachments if a.node == node.name and a.volume in volumes
        )
        return Decision(node.name, action, f"{proof}; force-deleting {names}", pods=pods,
                        attachments=attachments, lease_version=lease_version)
    verb = {Action.TAINT: "tainting out-of-service", Action.DELETE_NODE: "deleting the Node"}
    return Decision(node.name, action, f"{proof}; {verb[action]} to move {names}",
                    lease_version=lease_version)


def _node_decision(ctx: Context, node: NodeView) -> Decision | None:
    record = node.record()
    pods = ctx.view.pods_on(node.name)
    if node.ready == "True":
        if record is None:
            if FENCED_ANNOTATION not in node.annotations:
                return None
            wanted = Decision(node.name, Action.UNFENCE,
                              "Ready again; removing the manual fence of the last outage")
            return _guarded(ctx, node, wanted, RETURN_GUARDS)
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
    if node.ready != "Unknown":
        return Decision(node.name, Action.WAIT,
                        f"Ready={node.ready}: its kubelet is alive and reporting, so its pods "
                        "may be too; never a takeover")
    if node.name not in ctx.down:
        silent = ctx.silent.get(node.name, timedelta(0))
        return Decision(node.name, Action.WAIT,
                        f"Ready=Unknown and its Lease unchanged for {_seconds(silent)} as we "
                        f"observed it; acting at {_seconds(ctx.settings.node_down_after)}")
    return _guarded(ctx, node, _takeover(ctx, node), TAKEOVER_GUARDS)


def recheck_lease(decision: Decision, lease: PrimaryLease) -> Decision:
    """`decision` if the primary Lease as re-read just before acting is the version its `lease`
    guard judged, else a SKIP (guard `lease`). The pass decided on the Lease as it read it at
    its start; a holder whose sidecar reached the API again since then may have renewed it
    (same holder: at once) and lifted read-only, so the decision no longer holds. A Lease that
    cannot be re-read proves nothing either. A decision with no version (a power fence proves
    it) is returned as it is."""
    if decision.lease_version is None or decision.action not in TAKEOVER_ACTIONS:
        return decision
    if lease.problem:
        why = f"the primary Lease could not be re-read before acting: {lease.problem}"
    elif lease.resource_version != decision.lease_version:
        why = (f"the primary Lease {lease.where} changed since the pass began (resourceVersion "
               f"{decision.lease_version}, now {lease.resource_version}, held by "
               f"{lease.holder or 'nobody'}): its holder may be writable again; the next pass "
               "judges the new version")
    else:
        return decision
    return Decision(decision.node, Action.SKIP, why, guard="lease", would=decision.action)


def last_takeover(view: ClusterView, history: tuple[HistoryEntry, ...]) -> datetime | None:
    """The latest takeover: from the nodes' records and the leader Lease's history (both in
    the API: they survive a restart or a new leader; the history outlives a deleted Node)."""
    times = [r.at for n in view.nodes if (r := n.record()) and r.action in TAKEOVER_ACTIONS]
    times.extend(e.at for e in history if e.action in TAKEOVER_ACTIONS)
    return max(times, default=None)


def decide(view: ClusterView, settings: Settings, now: datetime,
           silent: Mapping[str, timedelta], history: tuple[HistoryEntry, ...] = (),
           lease_quiet: timedelta | None = None) -> list[Decision]:
    """One decision per node that needs one, in node-name order. At most one takeover per call:
    once one is decided, the cooldown guard holds back the rest.

    `now` is the controller's wall clock, only compared with what the controllers themselves
    stamped (records, history, fences); `silent` says for how long each node has been seen
    Ready=Unknown with an unchanged Lease, on a trusted clock, and `lease_quiet` for how long
    the set's primary Lease has been unchanged (None: not measurable)."""
    down = frozenset(n.name for n in view.nodes if is_down(n, settings, silent))
    ctx = Context(view, settings, now, silent, down, unhealthy(view, history),
                  last_takeover(view, history), lease_quiet)
    decisions = []
    for node in sorted(view.nodes, key=lambda n: n.name):
        decision = _node_decision(ctx, node)
        if decision is None:
            continue
        decisions.append(decision)
        if decision.action in TAKEOVER_ACTIONS and settings.cooldown > timedelta(0):
            ctx = replace(ctx, last_action=now)
    return decisions


def nodes_down(view: ClusterView, settings: Settings, silent: Mapping[str, timedelta]) -> int:
    return sum(1 for n in view.nodes if is_down(n, settings, silent))
