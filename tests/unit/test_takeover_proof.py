"""The controller's proof before it moves a pod (issue 16): the set's primary Lease unchanged for
its duration + the sidecars' self-fence + margin, and the storage guard for pods that hold no
Lease. A table over the decision core with the clocks injected (how long the Lease has been
unchanged is a plain value), then the watch that measures it, the parser and the window check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mysqlsts.takeover.decide import decide, recheck_lease
from mysqlsts.takeover.fence import lease_window_problem
from mysqlsts.takeover.model import (
    FENCED_ANNOTATION,
    SELF_FENCE_ANNOTATION,
    Action,
    ClusterView,
    Decision,
    ManualFence,
    NodeView,
    PodView,
    PrimaryLease,
    Settings,
    VolumeSource,
    primary_lease,
)
from mysqlsts.takeover.silence import LeaseWatch, lease_quiet_by_control_plane

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
SETTINGS = Settings(node_down_after=300 * S, healthy_after=60 * S, max_unhealthy=1,
                    cooldown=300 * S, action=Action.TAINT, dry_run=False,
                    lease_margin=10 * S,
                    detach_fenced_drivers=frozenset({"ebs.csi.aws.com", "pd.csi.storage.gke.io"}),
                    power_fence=False)
# Held by mysql-0: duration 15 s + self-fence 12.5 s + margin 10 s = a 37.5 s window.
HELD = PrimaryLease("db/mysql-primary", "mysql-0/uid-mysql-0", "8", 15 * S, 12.5 * S)
WINDOW = 37.5 * S
FREE = replace(HELD, holder="")
EBS = ("ebs.csi.aws.com", True)
NFS = ("nfs", False)  # an in-tree NFS volume
NFS_CSI = ("nfs.csi.k8s.io", True)


def node(name: str, ready: str = "True", fence: bool = False) -> NodeView:
    annotations = {FENCED_ANNOTATION: ManualFence(NOW - 900 * S, "ann", NOW).to_json()} \
        if fence else {}
    return NodeView(name, ready, NOW - 900 * S, "r1", annotations=annotations)


def pod(name: str, where: str | None, storage: tuple[str, bool] = EBS,
        uid: str | None = None) -> PodView:
    return PodView("db", name, where, (f"data-{name}",), (f"pv-{name}",),
                   uid=uid or f"uid-{name}",
                   sources=(VolumeSource(f"pv-{name}", storage[0], storage[1]),))


def cluster(*pods: PodView, lease: PrimaryLease | None = HELD, b_fenced: bool = False
            ) -> ClusterView:
    """node-b is down (Unknown for 900 s); node-a, node-c and node-d are Ready."""
    nodes = (node("node-a"), node("node-b", "Unknown", b_fenced), node("node-c"), node("node-d"))
    return ClusterView(nodes, pods, (1, 30), False, (), lease)


def on_b(v: ClusterView, quiet: timedelta | None, settings: Settings = SETTINGS
         ) -> tuple[str, str]:
    [d] = [d for d in decide(v, settings, NOW, {"node-b": 900 * S}, (), quiet)
           if d.node == "node-b"]
    return str(d.action), d.guard


PRIMARY_ON_B = (pod("mysql-0", "node-b"), pod("mysql-1", "node-c"))
REPLICA_ON_B = (pod("mysql-0", "node-a"), pod("mysql-1", "node-b"))

CASES = [
    # (id, view, how long the Lease has been unchanged on a trusted clock, expected)
    ("holder on the node, quiet for the whole window: taint",
     cluster(*PRIMARY_ON_B), WINDOW, ("taint", "")),
    ("holder on the node, quiet a moment too short: skip",
     cluster(*PRIMARY_ON_B), WINDOW - 0.5 * S, ("skip", "lease")),
    ("holder on the node, just renewed (a live primary, dead kubelet): skip",
     cluster(*PRIMARY_ON_B), 0 * S, ("skip", "lease")),
    ("holder on the node, quiet not measurable (no stamps): skip",
     cluster(*PRIMARY_ON_B), None, ("skip", "lease")),
    ("holder elsewhere on a Ready node: the replica moves, renewing or not",
     cluster(*REPLICA_ON_B), 0 * S, ("taint", "")),
    ("holder elsewhere, quiet not measurable: the replica moves",
     cluster(*REPLICA_ON_B), None, ("taint", "")),
    ("holder pod gone (no live pod of that name): the window is needed",
     cluster(pod("mysql-1", "node-b")), 0 * S, ("skip", "lease")),
    ("holder pod gone, quiet for the window: taint",
     cluster(pod("mysql-1", "node-b")), WINDOW, ("taint", "")),
    ("same name on another node, another uid (a replacement): the old one may run here",
     cluster(pod("mysql-0", "node-a", uid="uid-new"), pod("mysql-1", "node-b")), 0 * S,
     ("skip", "lease")),
    ("holder Pending, bound to no node: may run anywhere",
     cluster(pod("mysql-0", None), pod("mysql-1", "node-b")), 0 * S, ("skip", "lease")),
    ("a holder that names no uid cannot be told from a replacement",
     cluster(*REPLICA_ON_B, lease=replace(HELD, holder="mysql-0")), 0 * S, ("skip", "lease")),
    ("free Lease, quiet for the window: taint",
     cluster(*PRIMARY_ON_B, lease=FREE), WINDOW, ("taint", "")),
    ("free Lease, just released or changed: skip",
     cluster(*PRIMARY_ON_B, lease=FREE), WINDOW - S, ("skip", "lease")),
    ("no self-fence annotation: skip, never act",
     cluster(*REPLICA_ON_B, lease=replace(HELD, problem="no annotation")), 3600 * S,
     ("skip", "lease")),
    ("the Lease not read at all: skip",
     cluster(*PRIMARY_ON_B, lease=None), 3600 * S, ("skip", "lease")),
    ("a replica on NFS (in-tree): skip storage",
     cluster(pod("mysql-0", "node-a"), pod("mysql-1", "node-b", NFS)), 0 * S,
     ("skip", "storage")),
    ("a replica on a CSI driver whose detach does not fence: skip storage",
     cluster(pod("mysql-0", "node-a"), pod("mysql-1", "node-b", NFS_CSI)), 0 * S,
     ("skip", "storage")),
    ("a replica on GCE PD: taint",
     cluster(pod("mysql-0", "node-a"), pod("mysql-1", "node-b", ("pd.csi.storage.gke.io", True))),
     0 * S, ("taint", "")),
    ("the proven holder itself on NFS: it fenced itself, taint",
     cluster(pod("mysql-0", "node-b", NFS)), WINDOW, ("taint", "")),
    ("the proven holder plus a replica on NFS on the node: skip storage",
     cluster(pod("mysql-0", "node-b", NFS), pod("mysql-2", "node-b", NFS)), WINDOW,
     ("skip", "storage")),
    ("a manual fence for this outage outranks the Lease",
     cluster(*PRIMARY_ON_B, b_fenced=True), 0 * S, ("taint", "")),
    ("a manual fence for this outage outranks the storage",
     cluster(pod("mysql-0", "node-a"), pod("mysql-1", "node-b", NFS), b_fenced=True), 0 * S,
     ("taint", "")),
    ("a manual fence for this outage outranks a missing Lease",
     cluster(*PRIMARY_ON_B, lease=replace(HELD, problem="missing"), b_fenced=True), None,
     ("taint", "")),
]


@pytest.mark.parametrize(("v", "quiet", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_the_proof(v: ClusterView, quiet: timedelta | None, expected: tuple[str, str]) -> None:
    assert on_b(v, quiet) == expected


@pytest.mark.parametrize("v", [
    cluster(*PRIMARY_ON_B), cluster(pod("mysql-0", "node-a"), pod("mysql-1", "node-b", NFS)),
    cluster(*PRIMARY_ON_B, lease=replace(HELD, problem="missing"))])
def test_a_fence_command_outranks_both_guards(v: ClusterView) -> None:
    """With --fence-command the controller requires the command's word before any takeover
    (controller._proof), so the decision core does not ask the Lease or the storage."""
    assert on_b(v, None, replace(SETTINGS, power_fence=True)) == ("taint", "")
    assert on_b(v, None) in {("skip", "lease"), ("skip", "storage")}


def test_the_reasons_say_what_to_wait_for() -> None:
    [renewed] = decide(cluster(*PRIMARY_ON_B), SETTINGS, NOW, {"node-b": 900 * S}, (), 4 * S)
    assert renewed.reason == (
        "the primary Lease db/mysql-primary changed 4s ago: its holder mysql-0/uid-mysql-0 is "
        "on this node; it must stay unchanged for 37.5s (its duration 15s + self-fence 12.5s + "
        "margin 10s) before its holder has provably stopped writing")
    [proven] = decide(cluster(*PRIMARY_ON_B), SETTINGS, NOW, {"node-b": 900 * S}, (), 40 * S)
    assert proven.reason == (
        "Ready=Unknown and its Lease unchanged for 900s; the primary Lease "
        "(mysql-0/uid-mysql-0) unchanged for 40s >= 37.5s; tainting out-of-service to move "
        "mysql-0")
    [pending] = decide(cluster(pod("mysql-0", None), pod("mysql-1", "node-b")), SETTINGS, NOW,
                       {"node-b": 900 * S}, (), 4 * S)
    assert "its holder mysql-0/uid-mysql-0 is not a live pod of the set bound to another " \
        "node (it may still run anywhere, here too)" in pending.reason
    [storage] = decide(cluster(pod("mysql-0", "node-a"), pod("mysql-1", "node-b", NFS)),
                       SETTINGS, NOW, {"node-b": 900 * S}, (), None)
    assert storage.reason.startswith("mysql-1 (pv-mysql-1: in-tree nfs): a pod that holds no "
                                     "primary Lease has no self-fence")
    assert "(--detach-fenced-drivers: ebs.csi.aws.com, pd.csi.storage.gke.io)" in storage.reason


def test_the_lease_watch_counts_on_its_own_clock() -> None:
    watch = LeaseWatch()
    # A restarted controller: whatever the Lease's stamps say, it starts watching now.
    assert watch.observe(HELD, 1000.0) == 0 * S
    assert watch.observe(HELD, 1037.0) == 37 * S
    # A renewal (a new resourceVersion) starts the count over.
    renewed = replace(HELD, resource_version="9")
    assert watch.observe(renewed, 1038.0) == 0 * S
    assert watch.observe(renewed, 1040.0) == 2 * S
    # A failed read measures nothing, and forgets nothing (versions never repeat).
    assert watch.observe(replace(renewed, problem="HTTP 500"), 1041.0) is None
    assert watch.observe(None, 1042.0) is None
    assert watch.observe(renewed, 1043.0) == 5 * S
    # Released (a write like any other): counted from when it was seen.
    assert watch.observe(replace(FREE, resource_version="10"), 1044.0) == 0 * S


def test_once_measures_from_the_api_servers_stamps() -> None:
    """`--once` observes once: from kube-apiserver's stamp of the Lease's last write (the newest
    managedFields time) to its Date, less a second for the stamps' granularity."""
    lease = replace(HELD, written=NOW - 100 * S)
    assert lease_quiet_by_control_plane(lease, NOW) == 99 * S
    assert lease_quiet_by_control_plane(lease, NOW - 200 * S) == 0 * S  # never negative
    assert lease_quiet_by_control_plane(lease, None) is None  # no Date
    assert lease_quiet_by_control_plane(HELD, NOW) is None  # no stamps: not proven
    assert lease_quiet_by_control_plane(replace(lease, problem="x"), NOW) is None
    assert lease_quiet_by_control_plane(None, NOW) is None


def test_the_parser_reads_the_sidecars_fields() -> None:
    lease = primary_lease("db/mysql-primary", holder="mysql-0/u1", resource_version="7",
                          duration_seconds=15, annotations={SELF_FENCE_ANNOTATION: "12.5"},
                          written=[NOW - 50 * S, None, NOW - 10 * S, NOW - 90 * S])
    assert lease == PrimaryLease("db/mysql-primary", "mysql-0/u1", "7", 15 * S, 12.5 * S,
                                 NOW - 10 * S)
    assert lease.holder_pod() == ("mysql-0", "u1")
    assert lease.window(10 * S) == 37.5 * S
    free = primary_lease("w", holder=None, resource_version="8", duration_seconds=None,
                         annotations={SELF_FENCE_ANNOTATION: "10"}, written=[])
    assert (free.holder, free.duration, free.written, free.problem) == ("", 0 * S, None, "")
    assert replace(free, holder="mysql-0").holder_pod() == ("mysql-0", "")


@pytest.mark.parametrize(("annotations", "problem"), [
    ({}, "carries no mysqlsts.io/self-fence-seconds annotation"),
    ({SELF_FENCE_ANNOTATION: "ten"}, "'ten', not a positive number of seconds"),
    ({SELF_FENCE_ANNOTATION: "-1"}, "'-1', not a positive number of seconds"),
    ({SELF_FENCE_ANNOTATION: "0"}, "'0', not a positive number of seconds"),  # a holder never has 0
    ({SELF_FENCE_ANNOTATION: "nan"}, "'nan', not a positive number of seconds"),
    ({SELF_FENCE_ANNOTATION: "inf"}, "'inf', not a positive number of seconds"),
    ({SELF_FENCE_ANNOTATION: "1e20"}, "'1e20', not a positive number of seconds"),  # no timedelta
])
def test_a_lease_without_a_usable_self_fence_proves_nothing(
    annotations: dict[str, str], problem: str
) -> None:
    lease = primary_lease("db/mysql-primary", holder="mysql-0/u1", resource_version="7",
                          duration_seconds=15, annotations=annotations, written=[NOW])
    assert problem in lease.problem
    assert lease.problem.startswith("the primary Lease db/mysql-primary ")
    v = cluster(pod("mysql-0", "node-b", uid="u1"), lease=lease)
    [d] = decide(v, SETTINGS, NOW, {"node-b": 900 * S}, (), 3600 * S)
    assert (d.action, d.guard, d.reason) == (Action.SKIP, "lease", lease.problem)


@pytest.mark.parametrize(("down_after", "ok"), [(300, True), (38, True), (37, False)])
def test_the_node_window_must_cover_the_leases(down_after: int, ok: bool) -> None:
    problem = lease_window_problem(down_after * S, HELD, 10 * S)
    assert (problem is None) == ok
    if problem:
        assert problem == (
            "--node-down-after 37s is shorter than the primary Lease db/mysql-primary's "
            "window: its duration 15s + the sidecars' self-fence 12.5s + --lease-margin 10s "
            "= 37.5s")
    # A Lease that proves nothing is no settings problem (the pass skips with `lease`).
    assert lease_window_problem(1 * S, replace(HELD, problem="x"), 10 * S) is None


def taint_on_b(v: ClusterView, settings: Settings = SETTINGS) -> Decision:
    [d] = [d for d in decide(v, settings, NOW, {"node-b": 900 * S}, (), WINDOW)
           if d.node == "node-b"]
    assert d.action is Action.TAINT
    return d


def test_a_takeover_on_the_leases_proof_names_the_version_it_judged() -> None:
    """The controller re-reads the Lease before acting and compares with this version; a power
    fence proves the takeover whatever the Lease says, so there is nothing to re-read."""
    assert taint_on_b(cluster(*PRIMARY_ON_B)).lease_version == "8"
    assert taint_on_b(cluster(*REPLICA_ON_B)).lease_version == "8"  # holder elsewhere
    assert taint_on_b(cluster(*PRIMARY_ON_B), replace(SETTINGS, power_fence=True)
                      ).lease_version is None
    assert taint_on_b(cluster(*PRIMARY_ON_B, b_fenced=True)).lease_version is None


@pytest.mark.parametrize(("reread", "expected"), [
    (HELD, None),
    (replace(HELD, resource_version="9"),
     "the primary Lease db/mysql-primary changed since the pass began (resourceVersion 8, now "
     "9, held by mysql-0/uid-mysql-0): its holder may be writable again; the next pass judges "
     "the new version"),
    (replace(FREE, resource_version="9"), "(resourceVersion 8, now 9, held by nobody)"),
    (PrimaryLease("db/mysql-primary", problem="the primary Lease db/mysql-primary does not "
                  "exist"),
     "the primary Lease could not be re-read before acting: the primary Lease "
     "db/mysql-primary does not exist"),
], ids=["same version", "renewed", "released", "unreadable"])
def test_the_lease_read_again_before_acting(reread: PrimaryLease, expected: str | None) -> None:
    decided = taint_on_b(cluster(*PRIMARY_ON_B))
    after = recheck_lease(decided, reread)
    if expected is None:
        assert after is decided
        return
    assert (after.node, after.action, after.guard, after.would) == (
        "node-b", Action.SKIP, "lease", Action.TAINT)
    assert expected in after.reason


def test_nothing_to_read_again_without_the_leases_proof() -> None:
    """A power-fenced takeover, a return or a skip are left as they are, whatever the Lease."""
    moved = replace(HELD, resource_version="9")
    fenced = taint_on_b(cluster(*PRIMARY_ON_B), replace(SETTINGS, power_fence=True))
    assert recheck_lease(fenced, moved) is fenced
    back = Decision("node-b", Action.UNTAINT, "Ready again", lease_version="8")
    assert recheck_lease(back, moved) is back
