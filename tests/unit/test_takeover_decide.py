"""The takeover's decision core over a table of cases: conditions, observed silence, manual
fences, every guard, exclusions, a node's return, the version gate, the persisted history; and
the clocks it is fed (the silence watch, leader election), injected. Plain values in, decisions
out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mysqlsts.takeover.decide import TAKEOVER_GUARDS, decide, nodes_down
from mysqlsts.takeover.fence import window_problem
from mysqlsts.takeover.leader import Elector, Leadership, LeaseRecord
from mysqlsts.takeover.model import (
    EXCLUDE_LABEL,
    FENCED_ANNOTATION,
    OUT_OF_SERVICE,
    TAKEOVER_ANNOTATION,
    Action,
    ClusterView,
    HistoryEntry,
    ManualFence,
    NodeView,
    PodView,
    PrimaryLease,
    Record,
    Settings,
    VolumeAttachmentView,
    VolumeSource,
    history_after,
    history_parse,
    history_to_json,
)
from mysqlsts.takeover.silence import SilenceWatch, silence_by_control_plane

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
SETTINGS = Settings(node_down_after=300 * S, healthy_after=60 * S, max_unhealthy=1,
                    cooldown=300 * S, action=Action.TAINT, dry_run=False,
                    lease_margin=10 * S, detach_fenced_drivers=frozenset({"ebs.csi.aws.com"}),
                    power_fence=False)


def ready(name: str, for_: timedelta = 3600 * S, **kw: object) -> NodeView:
    return NodeView(name, "True", NOW - for_, "r1", **kw)  # type: ignore[arg-type]


def down(name: str, for_: timedelta, status: str = "Unknown", **kw: object) -> NodeView:
    """Not Ready since `for_` ago; `for_` is also how long it has been observed silent."""
    return NodeView(name, status, NOW - for_, "r1", **kw)  # type: ignore[arg-type]


def fenced(outage: datetime, by: str = "ann") -> dict[str, str]:
    return {FENCED_ANNOTATION: ManualFence(outage, by, NOW).to_json()}


def silence(v: ClusterView) -> dict[str, timedelta]:
    return {n.name: NOW - n.ready_since for n in v.nodes
            if n.ready == "Unknown" and n.ready_since is not None}


def pod(name: str, node: str | None, pinned: tuple[str, ...] = (),
        driver: str = "ebs.csi.aws.com", csi: bool = True) -> PodView:
    return PodView("db", name, node, (f"data-{name}",), (f"pv-{name}",), pinned,
                   uid=f"uid-{name}", sources=(VolumeSource(f"pv-{name}", driver, csi),))


# mysql-0 holds the primary Lease: duration 15 s + self-fence 10 s + margin 10 s = 35 s.
HELD = PrimaryLease("db/mysql-primary", "mysql-0/uid-mysql-0", "8", 15 * S, 10 * S)
QUIET = 3600 * S  # the Lease unchanged for an hour: its holder has long stopped writing


def view(*nodes: NodeView, pods: tuple[PodView, ...] = (), version: tuple[int, int] = (1, 30),
         paused: bool = False, attachments: tuple[VolumeAttachmentView, ...] = (),
         lease: PrimaryLease | None = HELD) -> ClusterView:
    return ClusterView(nodes, pods, version, paused, attachments, lease)


def three(b: NodeView, **kw: object) -> ClusterView:
    """mysql-0 on b (the node under test), mysql-1 on c, a empty."""
    pods = (pod("mysql-0", b.name), pod("mysql-1", "c"))
    return view(ready("a"), b, ready("c"), pods=pods, **kw)  # type: ignore[arg-type]


def outcome(v: ClusterView, settings: Settings = SETTINGS,
            history: tuple[HistoryEntry, ...] = (),
            silent: dict[str, timedelta] | None = None,
            quiet: timedelta | None = QUIET) -> list[tuple[str, str, str]]:
    observed = silence(v) if silent is None else silent
    return [(d.node, str(d.action), d.guard)
            for d in decide(v, settings, NOW, observed, history, quiet)]


TAINTED = Record(Action.TAINT, NOW - 1200 * S, taint_added=True).to_json()

CASES = [
    # (id, view, settings, expected)
    ("all ready: nothing", three(ready("b")), SETTINGS, []),
    ("unknown 299s: wait", three(down("b", 299 * S)), SETTINGS, [("b", "wait", "")]),
    ("unknown 300s: taint", three(down("b", 300 * S)), SETTINGS, [("b", "taint", "")]),
    ("Ready=False is a living kubelet: never", three(down("b", 4000 * S, status="False")),
     SETTINGS, [("b", "wait", "")]),
    ("down node without set pods: nothing",
     view(ready("a"), down("b", 900 * S), ready("c"), pods=(pod("mysql-0", "a"),)), SETTINGS,
     []),
    ("two of three down: guard",
     view(ready("a"), down("b", 900 * S), down("c", 900 * S),
          pods=(pod("mysql-0", "b"), pod("mysql-1", "c"))),
     replace(SETTINGS, max_unhealthy=5),
     [("b", "skip", "max-unhealthy"), ("c", "skip", "max-unhealthy")]),
    ("one of two down is half: allowed",
     view(ready("a"), down("b", 900 * S), pods=(pod("mysql-0", "b"),)), SETTINGS,
     [("b", "taint", "")]),
    ("one of one down is more than half",
     view(down("b", 900 * S), pods=(pod("mysql-0", "b"),)), SETTINGS,
     [("b", "skip", "max-unhealthy")]),
    ("two of five down, limit 1",
     view(ready("a"), down("b", 900 * S), down("c", 900 * S), ready("d"), ready("e"),
          pods=(pod("mysql-0", "b"),)), SETTINGS, [("b", "skip", "max-unhealthy")]),
    ("Unknown 301s + another Unknown 290s: both count, guard",
     view(ready("a"), down("b", 301 * S), down("c", 290 * S), ready("d"), ready("e"),
          pods=(pod("mysql-0", "b"), pod("mysql-1", "c"))), SETTINGS,
     [("b", "skip", "max-unhealthy"), ("c", "wait", "")]),
    ("a Ready=False node counts for the guard too",
     view(ready("a"), down("b", 900 * S), down("c", 5 * S, status="False"), ready("d"),
          pods=(pod("mysql-0", "b"),)), SETTINGS, [("b", "skip", "max-unhealthy")]),
    ("two of five down, limit 2: one per cooldown",
     view(ready("a"), down("b", 900 * S), down("c", 900 * S), ready("d"), ready("e"),
          pods=(pod("mysql-0", "b"), pod("mysql-1", "c"))), replace(SETTINGS, max_unhealthy=2),
     [("b", "taint", ""), ("c", "skip", "cooldown")]),
    ("excluded by label", three(down("b", 900 * S, labels={EXCLUDE_LABEL: "true"})), SETTINGS,
     [("b", "skip", "excluded")]),
    ("paused namespace", three(down("b", 900 * S), paused=True), SETTINGS,
     [("b", "skip", "paused")]),
    ("taint needs 1.28", three(down("b", 900 * S), version=(1, 27)), SETTINGS,
     [("b", "skip", "version")]),
    ("delete-pods works before 1.28", three(down("b", 900 * S), version=(1, 27)),
     replace(SETTINGS, action=Action.DELETE_PODS), [("b", "delete-pods", "")]),
    ("local volume pinned to the node",
     view(ready("a"), down("b", 900 * S), ready("c"), pods=(pod("mysql-0", "b", ("b",)),)),
     SETTINGS, [("b", "skip", "local-volume")]),
    ("local volume on another node does not block",
     view(ready("a"), down("b", 900 * S), ready("c"), pods=(pod("mysql-0", "b", ("z",)),)),
     SETTINGS, [("b", "taint", "")]),
    ("dry run", three(down("b", 900 * S)), replace(SETTINGS, dry_run=True),
     [("b", "skip", "dry-run")]),
    ("paused outranks dry run", three(down("b", 900 * S), paused=True),
     replace(SETTINGS, dry_run=True), [("b", "skip", "paused")]),
    ("manual fence for this outage: act before the window",
     three(down("b", 30 * S, annotations=fenced(NOW - 30 * S))), SETTINGS, [("b", "taint", "")]),
    ("stale manual fence (an earlier outage): wait",
     three(down("b", 30 * S, annotations=fenced(NOW - 40 * 86400 * S))), SETTINGS,
     [("b", "wait", "")]),
    ("old-style manual fence names no outage: wait",
     three(down("b", 30 * S, annotations={FENCED_ANNOTATION: "x by ann"})), SETTINGS,
     [("b", "wait", "")]),
    ("manual fence on a Ready=False node: never",
     three(down("b", 30 * S, status="False", annotations=fenced(NOW - 30 * S))), SETTINGS,
     [("b", "wait", "")]),
    ("manual fence on a Ready node: removed",
     three(ready("b", annotations=fenced(NOW - 4000 * S))), SETTINGS, [("b", "unfence", "")]),
    ("manual fence on a Ready node, paused: kept",
     three(ready("b", annotations=fenced(NOW - 4000 * S)), paused=True), SETTINGS,
     [("b", "skip", "paused")]),
    ("a pod whose volumes could not be read: skip that node",
     view(ready("a"), down("b", 900 * S), ready("c"),
          pods=(replace(pod("mysql-0", "b"), unreadable="HTTP 404 Not Found"),)), SETTINGS,
     [("b", "skip", "unreadable")]),
    ("already taken over: wait",
     three(down("b", 2000 * S, annotations={TAKEOVER_ANNOTATION: TAINTED})), SETTINGS,
     [("b", "wait", "")]),
    ("back for 59s: wait",
     view(ready("a"), ready("b", 59 * S, annotations={TAKEOVER_ANNOTATION: TAINTED})),
     SETTINGS, [("b", "wait", "")]),
    ("back for 60s with pods gone: untaint",
     view(ready("a"), ready("b", 60 * S, annotations={TAKEOVER_ANNOTATION: TAINTED}),
          pods=(pod("mysql-0", "a"),)), SETTINGS, [("b", "untaint", "")]),
    ("back but a pod still bound: wait",
     view(ready("a"), ready("b", 600 * S, annotations={TAKEOVER_ANNOTATION: TAINTED}),
          pods=(pod("mysql-0", "b"),)), SETTINGS, [("b", "wait", "")]),
    ("back, dry run: skip",
     view(ready("a"), ready("b", 600 * S, annotations={TAKEOVER_ANNOTATION: TAINTED})),
     replace(SETTINGS, dry_run=True), [("b", "skip", "dry-run")]),
    ("back, excluded: still given back",
     view(ready("a"), ready("b", 600 * S, labels={EXCLUDE_LABEL: ""},
                            annotations={TAKEOVER_ANNOTATION: TAINTED})),
     SETTINGS, [("b", "untaint", "")]),
    ("a foreign out-of-service taint without our record: left alone",
     view(ready("a"), ready("b", 600 * S, taints=(OUT_OF_SERVICE,))), SETTINGS, []),
    ("unparseable record: left alone",
     view(ready("a"), ready("b", 600 * S, annotations={TAKEOVER_ANNOTATION: "{oops"})),
     SETTINGS, []),
]


@pytest.mark.parametrize(("v", "settings", "expected"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_decisions(v: ClusterView, settings: Settings, expected: list[tuple[str, str, str]]
                   ) -> None:
    assert outcome(v, settings) == expected


def test_cooldown_counts_from_the_latest_record_on_any_node() -> None:
    recent = Record(Action.TAINT, NOW - 100 * S, taint_added=True).to_json()
    v = view(ready("a"), down("b", 900 * S), ready("c"), ready("d"),
             down("e", 2000 * S, annotations={TAKEOVER_ANNOTATION: recent}),
             pods=(pod("mysql-0", "b"),))
    settings = replace(SETTINGS, max_unhealthy=2)
    skip, held = decide(v, settings, NOW, silence(v), (), QUIET)
    assert (skip.node, skip.guard) == ("b", "cooldown")
    assert (held.node, held.action) == ("e", Action.WAIT)  # taken over, waiting for its return
    assert "100s ago" in skip.reason
    assert outcome(v, replace(settings, cooldown=99 * S)) == [("b", "taint", ""),
                                                              ("e", "wait", "")]


def test_cooldown_comes_from_the_persisted_history() -> None:
    v = three(down("b", 900 * S))
    recent = (HistoryEntry("gone", Action.TAINT, NOW - 10 * S),)
    assert outcome(v, history=recent) == [("b", "skip", "cooldown")]
    old = (HistoryEntry("gone", Action.TAINT, NOW - 301 * S),)
    assert outcome(v, history=old) == [("b", "taint", "")]


def test_a_deleted_node_stays_counted_by_the_partition_guard() -> None:
    v = view(ready("a"), down("b", 900 * S), ready("c"), ready("d"),
             pods=(pod("mysql-0", "b"),))
    deleted = (HistoryEntry("e", Action.DELETE_NODE, NOW - 3600 * S),)
    assert outcome(v, history=deleted) == [("b", "skip", "max-unhealthy")]
    # Once a Node of that name is back, it counts as itself.
    back = view(*v.nodes, ready("e"), pods=v.pods)
    assert outcome(back, history=deleted) == [("b", "taint", "")]


def test_silence_is_what_the_controller_observed_not_the_stamps() -> None:
    v = three(down("b", 4000 * S))  # stamps say an hour; we have watched for 10 s
    assert outcome(v, silent={"b": 10 * S}) == [("b", "wait", "")]
    assert outcome(v, silent={}) == [("b", "wait", "")]


def test_history_round_trips_and_ages_out() -> None:
    old = HistoryEntry("b", Action.TAINT, NOW - 25 * 3600 * S)
    kept = HistoryEntry("c", Action.DELETE_NODE, NOW - 3600 * S)
    new = HistoryEntry("d", Action.DELETE_PODS, NOW)
    entries = history_after((old, kept), new)
    assert entries == (kept, new)
    assert history_parse(history_to_json(entries)) == entries
    assert history_parse("{oops") == ()


def test_silence_watch_counts_on_its_own_clock() -> None:
    watch = SilenceWatch()
    b = down("b", 4000 * S)  # the stamp is an hour old: a restarted controller ignores that
    assert watch.observe([b], 1000.0) == {"b": 0 * S}
    assert watch.observe([b], 1299.0) == {"b": 299 * S}
    assert watch.observe([b], 1300.0) == {"b": 300 * S}
    # The kubelet renewed its Lease (whatever its clock says): alive, the count starts over.
    renewed = replace(b, lease_renewal="r2")
    assert watch.observe([renewed], 1310.0) == {"b": 0 * S}
    # A new Unknown transition is a new outage.
    again = replace(renewed, ready_since=NOW)
    assert watch.observe([again], 1320.0) == {"b": 0 * S}
    # Ready in between: forgotten.
    assert watch.observe([ready("b")], 1330.0) == {}
    assert watch.observe([again], 1340.0) == {"b": 0 * S}
    # Ready=False is a living kubelet: never silent.
    assert watch.observe([down("b", 4000 * S, status="False")], 1350.0) == {}


def test_silence_by_control_plane_uses_its_stamps_only() -> None:
    nodes = [down("b", 301 * S), down("c", 5 * S, status="False"), ready("a")]
    assert silence_by_control_plane(nodes, NOW) == {"b": 301 * S}
    # A node stamped after the API's own time (cannot happen on one clock): no silence.
    assert silence_by_control_plane([down("b", -10 * S)], NOW) == {"b": 0 * S}


def test_delete_pods_names_the_pods_and_their_attachments_only() -> None:
    attachments = (VolumeAttachmentView("va-b0", "b", "pv-mysql-0"),
                   VolumeAttachmentView("va-c1", "c", "pv-mysql-1"),
                   VolumeAttachmentView("va-b-other", "b", "pv-unrelated"))
    v = three(down("b", 900 * S), attachments=attachments)
    [d] = decide(v, replace(SETTINGS, action=Action.DELETE_PODS), NOW, silence(v), (), QUIET)
    assert [p.name for p in d.pods] == ["mysql-0"]
    assert d.attachments == ("va-b0",)


def test_guards_run_in_the_documented_order() -> None:
    assert [name for name, _ in TAKEOVER_GUARDS] == [
        "paused", "excluded", "max-unhealthy", "version", "unreadable", "local-volume",
        "lease", "storage", "cooldown", "dry-run"]


def test_every_sentence_names_node_and_reason() -> None:
    v = view(ready("a"), down("b", 900 * S), down("c", 900 * S),
             pods=(pod("mysql-0", "b"), pod("mysql-1", "c")))
    for d in decide(v, SETTINGS, NOW, silence(v)):
        assert d.sentence().startswith(f"node={d.node} skip taint guard=max-unhealthy: 2 of 3")


def test_nodes_down_counts_every_node() -> None:
    v = view(ready("a"), down("b", 900 * S), down("c", 100 * S), down("d", 900 * S, "False"),
             down("e", 10 * S, annotations=fenced(NOW - 10 * S)))
    assert nodes_down(v, SETTINGS, silence(v)) == 2


@pytest.mark.parametrize(("down_after", "fence_after", "ok"), [
    (300, 60, True), (180, 60, True), (179, 60, False), (300, 121, False), (600, 270, True)])
def test_fence_window(down_after: int, fence_after: int, ok: bool) -> None:
    problem = window_problem(down_after * S, fence_after * S)
    assert (problem is None) == ok
    if problem:
        assert f"{down_after}s is too short" in problem


def test_record_round_trips() -> None:
    record = Record(Action.DELETE_PODS, NOW, taint_added=False)
    assert Record.parse(record.to_json()) == record
    assert Record.parse(None) is None
    assert Record.parse('{"action": "reboot", "at": "2026-01-01T00:00:00+00:00"}') is None


LEASE = LeaseRecord("a", NOW - 10 * S, 30 * S, 3, "7")


def test_leader_election_judges_expiry_on_its_own_clock() -> None:
    """client-go's way: a Lease expires when this process has seen it unchanged for its
    duration, whatever the holder's renewTime says (another machine's clock)."""
    me = Elector("b", renew_deadline=20 * S)
    assert me.step(None, 0.0) is Leadership.CREATE
    stale_stamp = replace(LEASE, renewed=NOW - 3600 * S)  # a holder whose clock is an hour off
    assert me.step(stale_stamp, 100.0) is Leadership.STANDBY  # first seen now
    assert me.step(stale_stamp, 129.0) is Leadership.STANDBY
    assert me.step(stale_stamp, 130.0) is Leadership.ACQUIRE
    renewed = replace(stale_stamp, resource_version="8")  # the holder renewed
    assert me.step(renewed, 131.0) is Leadership.STANDBY
    assert me.step(replace(LEASE, holder=None), 132.0) is Leadership.ACQUIRE
    assert me.step(replace(LEASE, holder=""), 132.0) is Leadership.ACQUIRE
    assert me.step(replace(LEASE, holder="b"), 132.0) is Leadership.RENEW
    # A fresh candidate (a restart, `--once`) sees the Lease for the first time: not expired.
    assert Elector("c", 20 * S).step(stale_stamp, 5000.0) is Leadership.STANDBY


def test_leading_ends_at_the_renew_deadline() -> None:
    me = Elector("a", renew_deadline=20 * S)
    assert not me.leading(0.0)
    me.renewed(100.0)
    assert me.leading(119.9)
    assert not me.leading(120.0)
    me.renewed(121.0)
    me.lost()
    assert not me.leading(121.0)


def test_manual_fence_round_trips() -> None:
    fence = ManualFence(NOW - 60 * S, "alice", NOW)
    assert ManualFence.parse(fence.to_json()) == fence
    assert ManualFence.parse("2026-03-01T12:00:00Z by alice") is None
