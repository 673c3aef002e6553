"""The takeover's decision core over a table of cases: conditions, lease ages, the clock, every
guard, exclusions, a node's return, the version gate. Plain values in, decisions out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mysqlsts.takeover.decide import TAKEOVER_GUARDS, decide, nodes_down
from mysqlsts.takeover.fence import window_problem
from mysqlsts.takeover.leader import Leadership, LeaseRecord, leadership
from mysqlsts.takeover.model import (
    EXCLUDE_LABEL,
    FENCED_ANNOTATION,
    OUT_OF_SERVICE,
    TAKEOVER_ANNOTATION,
    Action,
    ClusterView,
    NodeView,
    PodView,
    Record,
    Settings,
    VolumeAttachmentView,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
SETTINGS = Settings(node_down_after=300 * S, healthy_after=60 * S, max_unhealthy=1,
                    cooldown=300 * S, action=Action.TAINT, dry_run=False)


def ready(name: str, for_: timedelta = 3600 * S, **kw: object) -> NodeView:
    return NodeView(name, "True", NOW - for_, NOW - 5 * S, **kw)  # type: ignore[arg-type]


def down(name: str, for_: timedelta, lease: timedelta | None = None, status: str = "Unknown",
         **kw: object) -> NodeView:
    renewed = None if lease == timedelta.max else NOW - (for_ if lease is None else lease)
    return NodeView(name, status, NOW - for_, renewed, **kw)  # type: ignore[arg-type]


def pod(name: str, node: str, pinned: tuple[str, ...] = ()) -> PodView:
    return PodView("db", name, node, (f"data-{name}",), (f"pv-{name}",), pinned)


def view(*nodes: NodeView, pods: tuple[PodView, ...] = (), version: tuple[int, int] = (1, 30),
         paused: bool = False,
         attachments: tuple[VolumeAttachmentView, ...] = ()) -> ClusterView:
    return ClusterView(nodes, pods, version, paused, attachments)


def three(b: NodeView, **kw: object) -> ClusterView:
    """mysql-0 on b (the node under test), mysql-1 on c, a empty."""
    pods = (pod("mysql-0", b.name), pod("mysql-1", "c"))
    return view(ready("a"), b, ready("c"), pods=pods, **kw)  # type: ignore[arg-type]


def outcome(v: ClusterView, settings: Settings = SETTINGS,
            remembered: datetime | None = None) -> list[tuple[str, str, str]]:
    return [(d.node, str(d.action), d.guard) for d in decide(v, settings, NOW, remembered)]


TAINTED = Record(Action.TAINT, NOW - 1200 * S, taint_added=True).to_json()

CASES = [
    # (id, view, settings, expected)
    ("all ready: nothing", three(ready("b")), SETTINGS, []),
    ("not ready 299s: wait", three(down("b", 299 * S)), SETTINGS, [("b", "wait", "")]),
    ("not ready 300s: taint", three(down("b", 300 * S)), SETTINGS, [("b", "taint", "")]),
    ("Ready=False counts like Unknown", three(down("b", 400 * S, status="False")), SETTINGS,
     [("b", "taint", "")]),
    ("lease still renewing: wait", three(down("b", 900 * S, lease=10 * S)), SETTINGS,
     [("b", "wait", "")]),
    ("lease 299s: wait", three(down("b", 900 * S, lease=299 * S)), SETTINGS,
     [("b", "wait", "")]),
    ("no lease at all: counts as silent", three(down("b", 301 * S, lease=timedelta.max)),
     SETTINGS, [("b", "taint", "")]),
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
    ("manual fence: act before the window",
     three(down("b", 30 * S, lease=30 * S, annotations={FENCED_ANNOTATION: "x by ann"})),
     SETTINGS, [("b", "taint", "")]),
    ("manual fence on a Ready node: nothing",
     three(ready("b", annotations={FENCED_ANNOTATION: "x by ann"})), SETTINGS, []),
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
    skip, held = decide(v, settings, NOW)
    assert (skip.node, skip.guard) == ("b", "cooldown")
    assert (held.node, held.action) == ("e", Action.WAIT)  # taken over, waiting for its return
    assert "100s ago" in skip.reason
    assert outcome(v, replace(settings, cooldown=99 * S)) == [("b", "taint", ""),
                                                              ("e", "wait", "")]


def test_cooldown_remembers_a_deleted_node() -> None:
    v = three(down("b", 900 * S))
    assert outcome(v, remembered=NOW - 10 * S) == [("b", "skip", "cooldown")]
    assert outcome(v, remembered=NOW - 301 * S) == [("b", "taint", "")]


def test_delete_pods_names_the_pods_and_their_attachments_only() -> None:
    attachments = (VolumeAttachmentView("va-b0", "b", "pv-mysql-0"),
                   VolumeAttachmentView("va-c1", "c", "pv-mysql-1"),
                   VolumeAttachmentView("va-b-other", "b", "pv-unrelated"))
    [d] = decide(three(down("b", 900 * S), attachments=attachments),
                 replace(SETTINGS, action=Action.DELETE_PODS), NOW)
    assert [p.name for p in d.pods] == ["mysql-0"]
    assert d.attachments == ("va-b0",)


def test_guards_run_in_the_documented_order() -> None:
    assert [name for name, _ in TAKEOVER_GUARDS] == [
        "paused", "excluded", "max-unhealthy", "version", "local-volume", "cooldown", "dry-run"]


def test_every_sentence_names_node_and_reason() -> None:
    v = view(ready("a"), down("b", 900 * S), down("c", 900 * S),
             pods=(pod("mysql-0", "b"), pod("mysql-1", "c")))
    for d in decide(v, SETTINGS, NOW):
        assert d.sentence().startswith(f"node={d.node} skip taint guard=max-unhealthy: 2 of 3")


def test_nodes_down_counts_every_node() -> None:
    v = view(ready("a"), down("b", 900 * S), down("c", 100 * S), down("d", 900 * S, lease=S))
    assert nodes_down(v, SETTINGS, NOW) == 1


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


@pytest.mark.parametrize(("record", "me", "expected"), [
    (None, "a", Leadership.CREATE),
    (LEASE, "a", Leadership.RENEW),
    (LEASE, "b", Leadership.STANDBY),
    (replace(LEASE, renewed=NOW - 30 * S), "b", Leadership.ACQUIRE),
    (replace(LEASE, renewed=NOW - 29 * S), "b", Leadership.STANDBY),
    (replace(LEASE, holder=None), "b", Leadership.ACQUIRE),
    (replace(LEASE, holder=""), "b", Leadership.ACQUIRE),
])
def test_leadership(record: LeaseRecord | None, me: str, expected: Leadership) -> None:
    assert leadership(record, me, NOW) is expected
