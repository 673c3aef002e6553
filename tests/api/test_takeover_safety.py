"""The ways issue 16 found to move a live primary, each against the validating API server with
the real client: a living kubelet with a skewed clock, a partition whose nodes cross the
window seconds apart, a stale manual fence, a leader that loses its Lease mid-pass, one
unreadable volume, two controllers racing, a replacement pod with the old one's name."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path

import kmock
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from takeover_cluster import (
    NOW,
    OWN_NS,
    SET_NS,
    FakeCluster,
    FakeMonotonic,
    attachment,
    controller,
    node,
    pod,
    writes,
)
from takeover_scenarios import three_nodes

from mysqlsts.takeover.model import (
    FENCED_ANNOTATION,
    HISTORY_ANNOTATION,
    Action,
    ManualFence,
    history_parse,
)

pytestmark = pytest.mark.asyncio
LEASE = ("coordination.k8s.io/v1/leases", OWN_NS, "mysqlsts-takeover")


def node_writes(server: kmock.KubernetesEmulator) -> list[str]:
    return [f"{c.verb} {c.resource}/{c.name}" for c in writes(server)
            if c.resource not in ("leases", "events")]


def event_writes(server: kmock.KubernetesEmulator) -> list[str]:
    return [c.body["reason"] for c in writes(server) if c.resource == "events"]


def five_nodes(cluster: FakeCluster, down: dict[str, tuple[str, timedelta]]) -> None:
    """node-a..node-e, Ready unless named in `down` (name → (Ready status, since)); mysql-0 on
    node-b, mysql-1 on node-c, mysql-2 on node-d. mysql-0 holds the primary Lease, renewed
    2 s ago, or last when node-b went silent."""
    for name in ("node-a", "node-b", "node-c", "node-d", "node-e"):
        status, since = down.get(name, ("True", timedelta(hours=1)))
        cluster.add_node(node(name, ready=status if status != "True" else True, since=since),
                         since if status != "True" else timedelta(seconds=5))
    for index, name in enumerate(("node-b", "node-c", "node-d")):
        cluster.add_pod(f"mysql-{index}", name, f"pv-{index}")
    cluster.add_primary_lease(NOW - down.get("node-b", ("True", timedelta(seconds=2)))[1])


async def test_a_living_kubelet_with_a_skewed_clock_is_never_down(
    kmock: kmock.KubernetesEmulator,
) -> None:
    """Ready=False stamped ten minutes ago by a kubelet whose clock is ten minutes behind, its
    Lease renewTime as old: the kubelet reports, so it is alive. Neither `--once` (control
    plane's stamps) nor the loop (its own clock, past the window) acts."""
    cluster = FakeCluster(kmock)
    cluster.add_node(node("node-a"), timedelta(seconds=5))
    cluster.add_node(node("node-b", ready="False", since=timedelta(minutes=10)),
                     timedelta(minutes=10))
    cluster.add_node(node("node-c"), timedelta(seconds=5))
    cluster.add_pod("mysql-0", "node-b", "pv-0")
    cluster.serve_fixed()
    once = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    clock = FakeMonotonic()
    loop = controller(str(kmock.url), once=False, monotonic=clock)
    await asyncio.to_thread(loop.run_pass, True)
    clock.now += 3600
    later = await asyncio.to_thread(loop.run_pass, True)
    for decisions in (once, later):
        assert [(d.node, d.action) for d in decisions] == [("node-b", Action.WAIT)]
        assert "Ready=False: its kubelet is alive" in decisions[0].reason
    assert node_writes(kmock) == []


async def test_the_partition_guard_counts_nodes_not_yet_past_the_window(
    kmock: kmock.KubernetesEmulator,
) -> None:
    """node-b Unknown for 301 s, node-c for 290 s: two nodes are failing at once, a partition
    more likely than two dead machines. node-b is not tainted alone."""
    cluster = FakeCluster(kmock)
    five_nodes(cluster, {"node-b": ("Unknown", timedelta(seconds=301)),
                         "node-c": ("Unknown", timedelta(seconds=290))})
    cluster.serve_fixed()
    decisions = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    assert [(d.node, d.action, d.guard) for d in decisions] == [
        ("node-b", Action.SKIP, "max-unhealthy"), ("node-c", Action.WAIT, "")]
    assert "2 of 5 nodes are not Ready" in decisions[0].reason
    assert node_writes(kmock) == []
    assert event_writes(kmock) == ["TakeoverSkipped"]


def _fence(outage: timedelta) -> dict[str, str]:
    return {FENCED_ANNOTATION: ManualFence(NOW - outage, "alice", NOW - outage).to_json()}


async def test_a_stale_manual_fence_proves_nothing(kmock: kmock.KubernetesEmulator) -> None:
    """Last month's fence on a node that went Unknown 40 s ago: not a proof for this outage."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=40))
    stale = node("node-b", ready=False, since=timedelta(seconds=40),
                 annotations=_fence(timedelta(days=30)))
    cluster.add("v1/nodes", stale)
    cluster.serve_fixed()
    [decision] = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    assert decision.action is Action.WAIT
    assert node_writes(kmock) == []


async def test_a_fence_for_this_outage_acts_at_once_and_goes_when_ready(
    kmock: kmock.KubernetesEmulator,
) -> None:
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=40))
    cluster.add("v1/nodes", node("node-b", ready=False, since=timedelta(seconds=40),
                                 annotations=_fence(timedelta(seconds=40))))
    cluster.serve_fixed()
    [taint] = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    assert taint.action is Action.TAINT and "alice confirmed" in taint.reason
    assert node_writes(kmock) == ["patch nodes/node-b"]
    # The node comes back (no record: say a person removed it): the fence is removed.
    cluster.add("v1/nodes", node("node-c", annotations=_fence(timedelta(days=1))))
    [unfence] = [d for d in await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
                 if d.node == "node-c"]
    assert unfence.action is Action.UNFENCE
    assert FENCED_ANNOTATION not in cluster.node("node-c")["metadata"]["annotations"]


async def test_a_leader_that_loses_its_lease_mid_pass_writes_nothing_after(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    """The fence command takes a while; meanwhile another replica takes the Lease. The old
    leader's confirmation (a compare-and-swap on the Lease) fails: no taint, no Event."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=400))
    cluster.serve_fixed()
    url = (f"{str(kmock.url).rstrip('/')}/apis/coordination.k8s.io/v1/namespaces/{OWN_NS}"
           "/leases/mysqlsts-takeover")
    script = tmp_path / "fence"
    script.write_text(
        f"#!{sys.executable}\nimport json, urllib.request\n"
        f"body = json.dumps({{'spec': {{'holderIdentity': 'takeover-b'}}}}).encode()\n"
        f"req = urllib.request.Request({url!r}, data=body, method='PATCH', headers="
        "{'Content-Type': 'application/merge-patch+json'})\n"
        "urllib.request.urlopen(req).read()\nprint('powered off')\n")
    script.chmod(0o755)
    ctl = controller(str(kmock.url), fence_command=script)
    [decision] = await asyncio.to_thread(ctl.run_pass, True)
    assert (decision.action, decision.guard, decision.would) == (
        Action.SKIP, "leadership", Action.TAINT)
    assert not ctl.leading
    assert node_writes(kmock) == []
    assert event_writes(kmock) == []
    lease_writes = [(c.verb, c.body["spec"]["holderIdentity"]) for c in writes(kmock)
                    if c.resource == "leases"]
    # Its confirmation was sent with the resourceVersion it had written, and refused (409).
    assert lease_writes == [("create", "takeover-a"), ("patch", "takeover-b"),
                            ("patch", "takeover-a")]
    assert kmock.objects[LEASE]["spec"]["holderIdentity"] == "takeover-b"


async def test_a_renew_deadline_passed_mid_pass_stops_the_writes(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    """The pass outlived the renew deadline (a slow fence command): no write, even though the
    Lease was not taken, since another replica may take it any moment."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=400))
    cluster.serve_fixed()
    clock = FakeMonotonic()
    script = tmp_path / "fence"
    script.write_text("#!/bin/sh\necho powered off\n")
    script.chmod(0o755)
    ctl = controller(str(kmock.url), fence_command=script, monotonic=clock)
    real_run = ctl._proof

    def slow_proof(*args: object) -> object:
        clock.now += 21  # the fence command took 21 s; the renew deadline is 20 s
        return real_run(*args)  # type: ignore[arg-type]

    ctl._proof = slow_proof  # type: ignore[method-assign]
    [decision] = await asyncio.to_thread(ctl.run_pass, True)
    assert decision.guard == "leadership" and "renew deadline" in decision.reason
    assert node_writes(kmock) == []


async def test_a_5xx_on_one_volume_skips_only_its_node(kmock: kmock.KubernetesEmulator
                                                       ) -> None:
    """mysql-0's PersistentVolume read fails with 500: node-b is a skip with that reason;
    node-c is still taken over in the same pass."""
    cluster = FakeCluster(kmock)
    five_nodes(cluster, {"node-b": ("Unknown", timedelta(seconds=400)),
                         "node-c": ("Unknown", timedelta(seconds=400))})
    kmock.fail[("GET", "/api/v1/persistentvolumes/pv-0")] = 500  # type: ignore[attr-defined]
    cluster.serve_fixed()
    ctl = controller(str(kmock.url), max_unhealthy=2, cooldown=timedelta(0))
    decisions = await asyncio.to_thread(ctl.run_pass, True)
    assert [(d.node, d.action, d.guard) for d in decisions] == [
        ("node-b", Action.SKIP, "unreadable"), ("node-c", Action.TAINT, "")]
    assert "HTTP 500" in decisions[0].reason
    assert node_writes(kmock) == ["patch nodes/node-c"]


async def test_a_pvc_404_on_one_pod_leaves_the_other_node_handled(
    kmock: kmock.KubernetesEmulator,
) -> None:
    cluster = FakeCluster(kmock)
    five_nodes(cluster, {"node-b": ("Unknown", timedelta(seconds=400)),
                         "node-c": ("Unknown", timedelta(seconds=400))})
    del kmock.objects["v1/persistentvolumeclaims", SET_NS, "data-mysql-0"]
    cluster.serve_fixed()
    ctl = controller(str(kmock.url), max_unhealthy=2, cooldown=timedelta(0))
    decisions = await asyncio.to_thread(ctl.run_pass, True)
    assert [(d.node, d.action, d.guard) for d in decisions] == [
        ("node-b", Action.SKIP, "unreadable"), ("node-c", Action.TAINT, "")]
    assert "404" in decisions[0].reason
    assert node_writes(kmock) == ["patch nodes/node-c"]
    assert event_writes(kmock) == ["TakeoverSkipped", "TakeoverTainted"]
    assert 'mysqlsts_takeover_skips_total{reason="unreadable"} 1.0' in \
        ctl.metrics.render().decode().splitlines()


async def test_a_5xx_on_one_action_leaves_the_pass_going(kmock: kmock.KubernetesEmulator
                                                         ) -> None:
    """The untaint of a returned node fails with 503; the takeover of another still happens."""
    cluster = FakeCluster(kmock)
    five_nodes(cluster, {"node-c": ("Unknown", timedelta(seconds=400))})
    record = json.dumps({"action": "taint", "at": (NOW - timedelta(hours=2)).isoformat(),
                         "taintAdded": True})
    cluster.add("v1/nodes", node("node-a", annotations={"mysqlsts.io/takeover": record}))
    kmock.fail[("PATCH", "/api/v1/nodes/node-a")] = 503  # type: ignore[attr-defined]
    cluster.serve_fixed()
    decisions = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    assert [(d.node, d.action, d.guard, d.would) for d in decisions] == [
        ("node-a", Action.SKIP, "api", Action.UNTAINT), ("node-c", Action.TAINT, "", None)]
    assert "503" in decisions[0].error
    assert node_writes(kmock) == ["patch nodes/node-a", "patch nodes/node-c"]


async def test_only_live_pods_of_the_set_count(kmock: kmock.KubernetesEmulator) -> None:
    """On the down node: a Succeeded pod of the set, a Failed one, and a Running pod with the
    label that another controller owns. None holds a server of the set: nothing to move."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=400))
    del kmock.objects["v1/pods", SET_NS, "mysql-0"]
    cluster.add("v1/pods", pod("mysql-0", "node-b", "data-mysql-0", phase="Succeeded"))
    cluster.add("v1/pods", pod("mysql-9", "node-b", phase="Failed"))
    cluster.add("v1/pods", pod("mysql-backup", "node-b", owner="mysql-backup"))
    cluster.add("v1/pods", pod("other", "node-b", labels={"app.kubernetes.io/name": "web"}))
    cluster.serve_fixed()
    decisions = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    assert decisions == []
    assert node_writes(kmock) == []


async def test_two_controllers_racing_taint_once(kmock: kmock.KubernetesEmulator) -> None:
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=400))
    cluster.serve_fixed()
    first = controller(str(kmock.url), identity="takeover-a")
    second = controller(str(kmock.url), identity="takeover-b")
    results = await asyncio.gather(asyncio.to_thread(first.run_pass, True),
                                   asyncio.to_thread(second.run_pass, True))
    assert sorted(len(r) for r in results) == [0, 1]
    assert node_writes(kmock) == ["patch nodes/node-b"]
    assert [first.leading, second.leading].count(True) == 1


async def test_two_controllers_racing_never_delete_a_replacement(
    kmock: kmock.KubernetesEmulator,
) -> None:
    """delete-pods: the race deletes mysql-0 once. The StatefulSet re-creates mysql-0 (a new
    uid); a delete decided on the old view (a stale actor) is refused by its uid
    precondition, and a second pass by either controller deletes nothing."""
    cluster = FakeCluster(kmock, minor=27)
    three_nodes(cluster, timedelta(seconds=400))
    cluster.add("storage.k8s.io/v1/volumeattachments", attachment("csi-c1", "node-c", "pv-1"))
    cluster.serve_fixed()
    first = controller(str(kmock.url), identity="takeover-a", action=Action.DELETE_PODS)
    second = controller(str(kmock.url), identity="takeover-b", action=Action.DELETE_PODS)
    results = await asyncio.gather(asyncio.to_thread(first.run_pass, True),
                                   asyncio.to_thread(second.run_pass, True))
    [decision] = [d for r in results for d in r]
    assert decision.action is Action.DELETE_PODS
    deletes = [c for c in writes(kmock) if c.verb == "delete" and c.resource == "pods"]
    assert [(c.name, c.body["preconditions"]) for c in deletes] == [
        ("mysql-0", {"uid": "uid-mysql-0"})]
    cluster.add("v1/pods", pod("mysql-0", "node-b", "data-mysql-0", uid="uid-mysql-0-new"))
    leader = first if first.leading else second
    with pytest.raises(ApiException) as refused:
        await asyncio.to_thread(leader.api.delete_pod, decision.pods[0])
    assert refused.value.status == 409
    for ctl in (first, second):
        await asyncio.to_thread(ctl.run_pass, True)
    replacement = kmock.objects["v1/pods", SET_NS, "mysql-0"]
    assert replacement["metadata"]["uid"] == "uid-mysql-0-new"
    assert len([c for c in writes(kmock) if c.verb == "delete" and c.resource == "pods"]) == 2


async def test_a_failed_record_after_deletes_still_holds_the_cooldown(
    kmock: kmock.KubernetesEmulator,
) -> None:
    """delete-pods deletes mysql-0, then writing the node's record fails. The takeover was
    written to the Lease's history before the delete, so the next leader (a fresh process)
    holds the cooldown instead of acting on node-c at once."""
    cluster = FakeCluster(kmock, minor=27)
    five_nodes(cluster, {"node-b": ("Unknown", timedelta(seconds=400))})
    cluster.add("storage.k8s.io/v1/volumeattachments", attachment("csi-c1", "node-c", "pv-1"))
    kmock.fail[("PATCH", "/api/v1/nodes/node-b")] = 500  # type: ignore[attr-defined]
    cluster.serve_fixed()
    first = controller(str(kmock.url), identity="takeover-a", action=Action.DELETE_PODS)
    [failed] = await asyncio.to_thread(first.run_pass, True)
    assert failed.guard == "api" and failed.would is Action.DELETE_PODS
    history = history_parse(kmock.objects[LEASE]["metadata"]["annotations"][HISTORY_ANNOTATION])
    assert [(e.node, e.action) for e in history] == [("node-b", Action.DELETE_PODS)]
    await asyncio.to_thread(first.release)
    # node-b is back; node-c fails next, and a new leader takes over.
    cluster.add("v1/nodes", node("node-b"))
    cluster.add("v1/nodes", node("node-c", ready=False, since=timedelta(seconds=400)))
    successor = controller(str(kmock.url), identity="takeover-b", action=Action.DELETE_PODS,
                           clock_at=NOW + timedelta(seconds=60))
    decisions = await asyncio.to_thread(successor.run_pass, True)
    assert [(d.node, d.action, d.guard) for d in decisions] == [
        ("node-c", Action.SKIP, "cooldown")]
    assert "60s ago" in decisions[0].reason


async def test_the_server_rejects_what_kube_apiserver_rejects(
    kmock: kmock.KubernetesEmulator,
) -> None:
    """The test server itself: a Node Event outside `default` is 422, a delete whose uid
    precondition does not match is 409, a stale resourceVersion is 409, selectors filter."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=400))
    cluster.add("v1/pods", pod("web-0", "node-a", labels={"app.kubernetes.io/name": "web"}))
    core = client.CoreV1Api(client.ApiClient(client.Configuration(host=str(kmock.url))))
    event = {"metadata": {"name": "x", "namespace": OWN_NS}, "reason": "r", "message": "m",
             "involvedObject": {"kind": "Node", "name": "node-b", "apiVersion": "v1"}}

    def refused(call: object) -> int:
        try:
            call()  # type: ignore[operator]
        except ApiException as exc:
            return int(exc.status)
        return 0

    assert await asyncio.to_thread(refused, lambda: core.create_namespaced_event(
        OWN_NS, event)) == 422
    event["metadata"]["namespace"] = "default"  # type: ignore[index]
    assert await asyncio.to_thread(refused, lambda: core.create_namespaced_event(
        "default", event)) == 0
    assert await asyncio.to_thread(refused, lambda: core.delete_namespaced_pod(
        "mysql-0", SET_NS, body={"preconditions": {"uid": "someone-else"}})) == 409
    assert await asyncio.to_thread(refused, lambda: core.patch_node(
        "node-b", {"metadata": {"resourceVersion": "1"}},
        _content_type="application/merge-patch+json")) == 409
    listed = await asyncio.to_thread(
        lambda: core.list_namespaced_pod(SET_NS, label_selector="app.kubernetes.io/name=web"))
    assert [p.metadata.name for p in listed.items] == ["web-0"]
