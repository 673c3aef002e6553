"""The controller against a fake API server: what it decides, and the requests it sends."""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kmock
import pytest
from takeover_cluster import (
    NOW,
    OWN_NS,
    SET_NS,
    FakeCluster,
    calls,
    controller,
    node,
    run_takeover_cli,
    write_kubeconfig,
    writes,
)
from takeover_scenarios import (
    delete_node,
    delete_pods,
    down_299s,
    down_301s,
    dry_run,
    lease_renewing,
    local_volume,
    node_back,
    old_api_server,
    paused,
    three_nodes,
    two_controllers,
    two_of_three_down,
)

from mysqlsts.takeover.model import (
    HISTORY_ANNOTATION,
    TAKEOVER_ANNOTATION,
    Action,
    ManualFence,
    Record,
    history_parse,
)

pytestmark = pytest.mark.asyncio

OUT_OF_SERVICE = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown",
                  "effect": "NoExecute"}


def node_writes(server: kmock.KubernetesEmulator) -> list[str]:
    """Writes outside the controller's own Lease and Events: the ones that change the cluster."""
    return [f"{c.verb} {c.resource}/{c.name}" for c in writes(server)
            if c.resource not in ("leases", "events")]


def events(server: kmock.KubernetesEmulator) -> list[dict[str, object]]:
    return [c.body for c in writes(server) if c.resource == "events"]


async def test_down_299s_does_nothing(kmock: kmock.KubernetesEmulator) -> None:
    outcome = await down_299s(kmock)
    assert node_writes(kmock) == []
    assert events(kmock) == []
    [wait] = outcome.decisions
    assert (wait.node, wait.action) == ("node-b", Action.WAIT)


async def test_down_301s_taints_that_node_and_no_other(kmock: kmock.KubernetesEmulator) -> None:
    outcome = await down_301s(kmock)
    assert [(d.node, d.action) for d in outcome.decisions] == [("node-b", Action.TAINT)]
    assert node_writes(kmock) == ["patch nodes/node-b"]
    patch = next(c for c in writes(kmock) if c.resource == "nodes")
    assert patch.body["spec"]["taints"] == [OUT_OF_SERVICE]
    assert patch.body["metadata"]["resourceVersion"] == "1001"  # optimistic concurrency
    record = Record.parse(patch.body["metadata"]["annotations"][TAKEOVER_ANNOTATION])
    assert record is not None and record.taint_added and record.action is Action.TAINT
    # The request carried the label selector: only the set's pods are considered.
    pod_lists = [r for r in kmock if r.url.path == f"/api/v1/namespaces/{SET_NS}/pods"]
    assert [r.params.get("labelSelector") for r in pod_lists] == ["app.kubernetes.io/name=mysql"]
    [event] = events(kmock)
    assert event["involvedObject"] == {"apiVersion": "v1", "kind": "Node", "name": "node-b",
                                       "uid": "uid-node-b"}
    assert event["reason"] == "TakeoverTainted"
    # Accepted by the server's Event validation: a Node's Events live in `default`.
    assert [c.namespace for c in writes(kmock) if c.resource == "events"] == ["default"]
    stored = [key for key in kmock.objects if key[0].plural == "events"]
    assert [(ns) for _, ns, _ in stored] == ["default"]
    assert OUT_OF_SERVICE in FakeCluster(kmock).node("node-b")["spec"]["taints"]


async def test_the_loop_watches_a_full_window_and_a_renewal_restarts_it(
    kmock: kmock.KubernetesEmulator,
) -> None:
    outcome = await lease_renewing(kmock)
    assert node_writes(kmock) == []
    assert "unchanged for 0s" in outcome.decisions[0].reason  # just started: it watches
    # 499 s after it started, 299 s after the kubelet's last renewal: still waiting.
    assert [d.action for d in outcome.successor] == [Action.WAIT]
    assert "unchanged for 299s" in outcome.successor[0].reason


async def test_two_of_three_down_is_a_guard(kmock: kmock.KubernetesEmulator) -> None:
    outcome = await two_of_three_down(kmock)
    assert node_writes(kmock) == []
    assert {(d.node, d.action, d.guard) for d in outcome.decisions} == {
        ("node-b", Action.SKIP, "max-unhealthy"), ("node-c", Action.SKIP, "max-unhealthy")}
    assert [e["reason"] for e in events(kmock)] == ["TakeoverSkipped"] * 2


async def test_node_back_loses_only_our_taint(kmock: kmock.KubernetesEmulator) -> None:
    outcome = await node_back(kmock)
    assert [(d.node, d.action) for d in outcome.decisions] == [("node-b", Action.UNTAINT)]
    assert node_writes(kmock) == ["patch nodes/node-b"]
    after = FakeCluster(kmock).node("node-b")
    assert after["spec"]["taints"] == [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]
    assert TAKEOVER_ANNOTATION not in after["metadata"]["annotations"]


async def test_only_the_leader_acts(kmock: kmock.KubernetesEmulator) -> None:
    outcome = await two_controllers(kmock)
    assert [d.action for d in outcome.decisions] == [Action.TAINT]
    assert outcome.standby == []
    # The leader created the Lease and tainted; the standby read the Lease and wrote nothing;
    # the leader renewed; after it died, the standby took the Lease (and found nothing to do).
    lease_calls = [(c.verb, c.body["spec"]["holderIdentity"] if c.body else None)
                   for c in calls(kmock) if c.resource == "leases" and c.namespace == OWN_NS]
    assert lease_calls == [
        ("get", None), ("create", "takeover-a"), ("patch", "takeover-a"),  # confirm, then taint
        ("get", None),
        ("get", None), ("patch", "takeover-a"),
        ("get", None),
        ("get", None), ("patch", "takeover-b"),
    ]
    assert node_writes(kmock) == ["patch nodes/node-b"]
    assert [d.action for d in outcome.successor] == [Action.WAIT]
    lease = kmock.objects["coordination.k8s.io/v1/leases", OWN_NS, "mysqlsts-takeover"]
    assert lease["spec"]["holderIdentity"] == "takeover-b"
    assert lease["spec"]["leaseTransitions"] == 1
    # MicroTime with its six digits even at a whole second: the API server requires them.
    assert lease["spec"]["renewTime"] == "2026-03-01T12:00:00.000000Z"
    # The takeover was written to the Lease before it happened: the successor inherits it.
    history = history_parse(lease["metadata"]["annotations"][HISTORY_ANNOTATION])
    assert [(e.node, e.action) for e in history] == [("node-b", Action.TAINT)]


async def test_dry_run_writes_nothing(kmock: kmock.KubernetesEmulator) -> None:
    outcome = await dry_run(kmock)
    assert writes(kmock) == []
    [skip] = outcome.decisions
    assert (skip.action, skip.guard, skip.would) == (Action.SKIP, "dry-run", Action.TAINT)


async def test_taint_needs_kubernetes_1_28(kmock: kmock.KubernetesEmulator) -> None:
    outcome = await old_api_server(kmock)
    assert node_writes(kmock) == []
    assert outcome.decisions[0].guard == "version"
    assert "1.27" in outcome.decisions[0].reason


async def test_local_volume_is_reported_not_moved(kmock: kmock.KubernetesEmulator) -> None:
    outcome = await local_volume(kmock)
    assert node_writes(kmock) == []
    assert outcome.decisions[0].guard == "local-volume"


async def test_paused_namespace(kmock: kmock.KubernetesEmulator) -> None:
    outcome = await paused(kmock)
    assert node_writes(kmock) == []
    assert outcome.decisions[0].guard == "paused"


async def test_delete_pods_removes_pod_and_its_attachment(
    kmock: kmock.KubernetesEmulator,
) -> None:
    outcome = await delete_pods(kmock)
    assert [d.action for d in outcome.decisions] == [Action.DELETE_PODS]
    assert node_writes(kmock) == [
        "delete pods/mysql-0", "delete volumeattachments/csi-b0", "patch nodes/node-b"]
    pod_delete = next(r for r in kmock if r.method == "DELETE" and "/pods/" in r.url.path)
    assert pod_delete.params.get("gracePeriodSeconds") == "0"
    # Each delete names the object it was decided for.
    preconditions = {c.name: c.body["preconditions"] for c in writes(kmock) if c.verb == "delete"}
    assert preconditions == {"mysql-0": {"uid": "uid-mysql-0"}, "csi-b0": {"uid": "uid-csi-b0"}}


async def test_delete_node(kmock: kmock.KubernetesEmulator) -> None:
    await delete_node(kmock)
    assert node_writes(kmock) == ["delete nodes/node-b"]
    [delete] = [c for c in writes(kmock) if c.verb == "delete"]
    assert delete.body["preconditions"] == {"uid": "uid-node-b", "resourceVersion": "1001"}


async def test_cli_once_against_a_kubeconfig(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    """`mysqlsts takeover --once` as an operator runs it: a kubeconfig, real time, stdout."""
    cluster = FakeCluster(kmock)
    # Real time here: a node down for an hour is past the window whenever the CLI runs.
    three_nodes(cluster, timedelta(hours=1), now=datetime.now(UTC))
    cluster.serve_fixed(api_time=None)  # the control plane's clock: the real one
    kubeconfig = write_kubeconfig(tmp_path, str(kmock.url), token="not-a-secret")
    run = await run_takeover_cli(kubeconfig, "--once", "--namespace", SET_NS,
                                 "--lease-namespace", OWN_NS)
    assert run.returncode == 0, run.err
    lines = run.out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("node=node-b taint: "), lines
    assert node_writes(kmock) == ["patch nodes/node-b"]
    assert json.loads(FakeCluster(kmock).node("node-b")["metadata"]["annotations"][
        TAKEOVER_ANNOTATION])["action"] == "taint"


@pytest.mark.parametrize(("exit_code", "expected"), [(0, Action.TAINT), (3, Action.SKIP)])
async def test_fence_command_must_say_powered_off(
    kmock: kmock.KubernetesEmulator, tmp_path: Path, exit_code: int, expected: Action
) -> None:
    script = tmp_path / "fence"
    script.write_text(f"#!/bin/sh\necho \"$1 state=checked\" >> {tmp_path}/asked\n"
                      f"echo instance-state\nexit {exit_code}\n")
    script.chmod(0o755)
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=400))
    cluster.serve_fixed()
    ctl = controller(str(kmock.url), fence_command=script)
    [decision] = await asyncio.to_thread(ctl.run_pass, True)
    assert (tmp_path / "asked").read_text() == "node-b state=checked\n"
    assert decision.action is expected
    if expected is Action.SKIP:
        assert decision.guard == "fence" and "exited 3: instance-state" in decision.reason
        assert node_writes(kmock) == []
    else:
        assert node_writes(kmock) == ["patch nodes/node-b"]


async def test_probes_and_metrics_after_a_takeover(kmock: kmock.KubernetesEmulator) -> None:
    from mysqlsts.takeover.http import serve

    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=400))
    cluster.serve_fixed()
    ctl = controller(str(kmock.url))
    server = serve("127.0.0.1", 0, ctl.livez, ctl.readyz, ctl.metrics.render)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        ready_before = await asyncio.to_thread(lambda: _status(f"{base}/readyz"))
        await asyncio.to_thread(ctl.run_pass)
        ready_after = await asyncio.to_thread(lambda: _status(f"{base}/readyz"))
        metrics = await asyncio.to_thread(lambda: _body(f"{base}/metrics"))
    finally:
        server.shutdown()
        server.server_close()
    assert ready_before == (503, "no recent view of the API")
    assert ready_after == (200, "leader")
    for line in ('mysqlsts_takeover_actions_total{action="taint",result="ok"} 1.0',
                 "mysqlsts_takeover_nodes_down 1.0", "mysqlsts_takeover_leader 1.0"):
        assert line in metrics.splitlines(), line


def _body(url: str) -> str:
    from urllib.request import urlopen

    with urlopen(url) as response:
        return str(response.read().decode())


def _status(url: str) -> tuple[int, str]:
    from urllib.error import HTTPError
    from urllib.request import urlopen

    try:
        with urlopen(url) as response:
            return response.status, response.read().decode().strip()
    except HTTPError as error:
        return error.code, error.read().decode().strip()


async def test_fence_command_line_writes_the_annotation(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=30))
    kubeconfig = write_kubeconfig(tmp_path, str(kmock.url))
    run = await run_takeover_cli(kubeconfig, "fence", "node-b", "--by", "alice")
    assert run.returncode == 0, run.err
    assert "node-b" in run.out
    assert node_writes(kmock) == ["patch nodes/node-b"]
    fence = ManualFence.parse(cluster.node("node-b")["metadata"]["annotations"][
        "mysqlsts.io/fenced"])
    # It names the outage it confirms: node-b's Ready=Unknown transition, 30 s before NOW.
    assert fence is not None and fence.by == "alice"
    assert fence.outage == NOW - timedelta(seconds=30)


async def test_fence_refuses_a_node_whose_kubelet_reports(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    cluster = FakeCluster(kmock)
    cluster.add_node(node("node-b", ready="False", since=timedelta(seconds=30)),
                     timedelta(seconds=1))
    kubeconfig = write_kubeconfig(tmp_path, str(kmock.url))
    run = await run_takeover_cli(kubeconfig, "fence", "node-b", "--by", "alice")
    assert run.returncode == 1, run.out
    lines = run.err.strip().splitlines()
    assert len(lines) == 1 and "reports Ready=False" in lines[0], lines
    assert node_writes(kmock) == []


async def test_a_stopping_leader_hands_the_lease_over(kmock: kmock.KubernetesEmulator) -> None:
    """SIGTERM (a rollout, a drain) releases the Lease: the standby leads on its next pass,
    not a Lease duration later."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(seconds=100))
    cluster.serve_fixed()
    leader = controller(str(kmock.url), identity="takeover-a")
    standby = controller(str(kmock.url), identity="takeover-b")
    await asyncio.to_thread(leader.run_pass, True)
    await asyncio.to_thread(standby.run_pass, True)
    assert not standby.leading
    stop = threading.Event()
    stop.set()
    await asyncio.to_thread(leader.run, stop)  # the loop's exit path, as after SIGTERM
    assert not leader.leading
    lease = kmock.objects["coordination.k8s.io/v1/leases", OWN_NS, "mysqlsts-takeover"]
    assert not lease["spec"].get("holderIdentity")
    await asyncio.to_thread(standby.run_pass, True)  # same instant: no waiting for expiry
    assert standby.leading
    lease = kmock.objects["coordination.k8s.io/v1/leases", OWN_NS, "mysqlsts-takeover"]
    assert lease["spec"]["holderIdentity"] == "takeover-b"


async def test_once_in_the_leaders_pod_is_not_a_second_leader(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    """`kubectl exec` into the leader's pod and `mysqlsts takeover --once`: the process
    inherits POD_NAME. It runs as a candidate of its own, finds the Lease held, and neither
    renews it nor acts."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, timedelta(hours=1), now=datetime.now(UTC))
    cluster.add("coordination.k8s.io/v1/leases", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "mysqlsts-takeover", "namespace": OWN_NS, "uid": "uid-lease",
                     "resourceVersion": "9001"},
        "spec": {"holderIdentity": "takeover-a", "leaseDurationSeconds": 30,
                 "renewTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}})
    cluster.serve_fixed(api_time=None)
    kubeconfig = write_kubeconfig(tmp_path, str(kmock.url))
    run = await run_takeover_cli(kubeconfig, "--once", "--namespace", SET_NS,
                                 "--lease-namespace", OWN_NS, env={"POD_NAME": "takeover-a"})
    assert run.returncode == 0, run.err
    assert run.out.splitlines() == [
        "standby: the Lease mysqlsts-takeover is held by another replica"]
    assert writes(kmock) == []
