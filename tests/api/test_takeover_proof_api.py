"""The controller's proof against the validating API server with the real client (issue 16): a
primary that still renews the set's primary Lease from a node whose kubelet is dead is never
moved; the same node is tainted once the Lease has been quiet for its duration + the sidecars'
self-fence + margin; a replica on storage whose force-detach does not cut the old node is a
skip; a Lease that proves nothing is a skip; settings shorter than the Lease's window refuse to
start. The Lease's writes go through the server, which stamps them as kube-apiserver does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import kmock
import pytest
from kubernetes import client
from takeover_cluster import (
    NOW,
    PRIMARY_LEASE,
    SET_NS,
    FakeCluster,
    FakeMonotonic,
    attachment,
    calls,
    controller,
    micro,
    node,
    run_takeover_cli,
    write_kubeconfig,
    writes,
)
from takeover_scenarios import three_nodes

from mysqlsts.takeover.controller import Controller
from mysqlsts.takeover.model import Action, Decision, HistoryEntry

pytestmark = pytest.mark.asyncio
S = timedelta(seconds=1)


def node_writes(server: kmock.KubernetesEmulator) -> list[str]:
    return [f"{c.verb} {c.resource}/{c.name}" for c in writes(server)
            if c.resource not in ("leases", "events")]


def event_reasons(server: kmock.KubernetesEmulator) -> list[str]:
    return [c.body["reason"] for c in writes(server) if c.resource == "events"]


def renew(server: kmock.KubernetesEmulator, at: datetime) -> None:
    """mysql-0's sidecar renews the primary Lease through the API server at its time `at`."""
    server.api_time = at  # type: ignore[attr-defined]
    api = client.CoordinationV1Api(client.ApiClient(client.Configuration(host=str(server.url))))
    api.patch_namespaced_lease(PRIMARY_LEASE, SET_NS, {"spec": {"renewTime": micro(at)}},
                               _content_type="application/merge-patch+json")


async def loop_passes(server: kmock.KubernetesEmulator, renew_until: float,
                      before_last: Callable[[Controller], None] | None = None,
                      action: Action = Action.TAINT) -> list[Decision]:
    """node-b (mysql-0, the Lease's holder) is Unknown; the loop starts watching at 1000 s on
    its monotonic clock and passes at +150 s and +301 s (node-b down by then). mysql-0's sidecar
    renews the Lease before each pass up to `renew_until` seconds in. `before_last` is given
    the controller before its last pass."""
    cluster = FakeCluster(server)
    three_nodes(cluster, 900 * S)
    cluster.add("storage.k8s.io/v1/volumeattachments", attachment("csi-b0", "node-b", "pv-0"))
    cluster.serve_fixed()
    clock = FakeMonotonic()
    ctl = controller(str(server.url), once=False, monotonic=clock, action=action)
    last: list[Decision] = []
    for offset in (0, 150, 301):
        clock.now = 1000.0 + offset
        if offset <= renew_until:
            await asyncio.to_thread(renew, server, NOW + offset * S)
        if offset == 301 and before_last is not None:
            before_last(ctl)
        server.api_time = NOW + offset * S  # type: ignore[attr-defined]
        last = await asyncio.to_thread(ctl.run_pass, True)
    return last


async def test_a_live_primary_behind_a_dead_kubelet_is_never_moved(
    kmock: kmock.KubernetesEmulator,
) -> None:
    """node-b's kubelet is dead (Unknown past --node-down-after as the loop watched it) but
    mysql-0's sidecar still renews the primary Lease: its server is writable. No taint."""
    [decision] = await loop_passes(kmock, renew_until=301)
    assert (decision.node, decision.action, decision.guard, decision.would) == (
        "node-b", Action.SKIP, "lease", Action.TAINT)
    assert decision.reason.startswith(
        "the primary Lease db/mysql-primary changed 0s ago: its holder mysql-0/uid-mysql-0 is on "
        "this node; it must stay unchanged for 35s")
    assert node_writes(kmock) == []
    assert event_reasons(kmock) == ["TakeoverSkipped"]


async def test_the_same_node_is_tainted_once_the_lease_is_quiet_for_the_window(
    kmock: kmock.KubernetesEmulator,
) -> None:
    """The sidecar's last renewal was at +150 s (then its server fenced itself): by +301 s the
    Lease has been unchanged for 151 s on the controller's clock, past 15 + 10 + 10 s."""
    [decision] = await loop_passes(kmock, renew_until=150)
    assert (decision.node, decision.action) == ("node-b", Action.TAINT)
    assert "the primary Lease (mysql-0/uid-mysql-0) unchanged for 151s >= 35s" in \
        decision.reason
    assert node_writes(kmock) == ["patch nodes/node-b"]
    # The Lease was read again after the leadership renewal, right before the taint.
    last = [f"{c.verb} {c.resource}/{c.name}" for c in calls(kmock)
            if c.resource != "events"][-3:]
    assert last == ["patch leases/mysqlsts-takeover", f"get leases/{PRIMARY_LEASE}",
                    "patch nodes/node-b"]


@pytest.mark.parametrize(("meanwhile", "reason"), [
    ("renew", "the primary Lease db/mysql-primary changed since the pass began (resourceVersion "),
    ("fail", "the primary Lease could not be re-read before acting: the primary Lease "
             "db/mysql-primary could not be read: HTTP 500"),
], ids=["renewed", "unreadable"])
@pytest.mark.parametrize("action", [Action.TAINT, Action.DELETE_PODS])
async def test_a_lease_renewed_after_the_pass_read_it_stops_the_taint(
    kmock: kmock.KubernetesEmulator, monkeypatch: pytest.MonkeyPatch, meanwhile: str,
    reason: str, action: Action,
) -> None:
    """The pass reads the Lease quiet for the window (as above) and decides to taint; then
    mysql-0's sidecar reaches the API again and renews it (same holder: at once), and may lift
    read-only, before the taint is sent. Injected right after the controller's leadership
    renewal, the last step before the taint: the Lease is read again there, and a new version
    (or a Lease that cannot be read) makes the taint (or the first pod delete) a skip of the
    `lease` guard."""
    path = f"/apis/coordination.k8s.io/v1/namespaces/{SET_NS}/leases/{PRIMARY_LEASE}"

    def renew_while_confirming(ctl: Controller) -> None:
        confirm, done = ctl._confirm, []

        def confirming(entry: HistoryEntry | None = None) -> None:
            confirm(entry)
            if not done:
                done.append(entry)
                if meanwhile == "renew":
                    renew(kmock, NOW + 301 * S)
                else:
                    kmock.fail[("GET", path)] = 500  # type: ignore[attr-defined]
        monkeypatch.setattr(ctl, "_confirm", confirming)
        seen.append(ctl)

    seen: list[Controller] = []
    [decision] = await loop_passes(kmock, renew_until=150, before_last=renew_while_confirming,
                                   action=action)
    assert (decision.node, decision.action, decision.guard, decision.would) == (
        "node-b", Action.SKIP, "lease", action)
    assert decision.reason.startswith(reason), decision.reason
    assert node_writes(kmock) == []
    assert event_reasons(kmock) == ["TakeoverSkipped"]
    assert 'mysqlsts_takeover_skips_total{reason="lease"} 1.0' in \
        seen[0].metrics.render().decode().splitlines()


@pytest.mark.parametrize(("renewed_ago", "expected"), [
    (35, (Action.SKIP, "lease")),  # stamped 35 s before Date: 34 s for sure, the window is 35
    (36, (Action.TAINT, "")),
    (3, (Action.SKIP, "lease")),
])
async def test_once_judges_the_lease_by_the_api_servers_stamps(
    kmock: kmock.KubernetesEmulator, renewed_ago: int, expected: tuple[Action, str]
) -> None:
    """`--once` cannot watch: it reads when kube-apiserver last wrote the Lease (managedFields)
    against the API server's Date, both the control plane's clock."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, 400 * S)
    await asyncio.to_thread(renew, kmock, NOW - renewed_ago * S)
    stamps = [e["time"] for e in cluster.primary_lease()["metadata"]["managedFields"]]
    assert max(stamps) == (NOW - renewed_ago * S).strftime("%Y-%m-%dT%H:%M:%SZ")
    cluster.serve_fixed(api_time=NOW)
    [decision] = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    assert (decision.action, decision.guard) == expected
    assert node_writes(kmock) == ([] if expected[0] is Action.SKIP else ["patch nodes/node-b"])


async def test_once_without_stamps_proves_nothing(kmock: kmock.KubernetesEmulator) -> None:
    cluster = FakeCluster(kmock)
    three_nodes(cluster, 400 * S)
    lease = cluster.primary_lease()
    del lease["metadata"]["managedFields"]
    cluster.add("coordination.k8s.io/v1/leases", lease)
    cluster.serve_fixed()
    [decision] = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    assert (decision.action, decision.guard) == (Action.SKIP, "lease")
    assert "cannot be measured" in decision.reason
    assert node_writes(kmock) == []


@pytest.mark.parametrize("storage", [{"nfs": True}, {"driver": "nfs.csi.k8s.io"}],
                         ids=["in-tree nfs", "csi nfs"])
async def test_a_replica_on_storage_a_detach_does_not_fence_is_a_skip(
    kmock: kmock.KubernetesEmulator, storage: dict[str, object]
) -> None:
    """mysql-0 (the Lease's holder) runs on node-a; node-b holds only mysql-1, a replica with
    no self-fence whose mysqld may still write its NFS volume: moving it would share it."""
    cluster = FakeCluster(kmock)
    cluster.add_node(node("node-a"), 5 * S)
    cluster.add_node(node("node-b", ready=False, since=400 * S), 400 * S)
    cluster.add_node(node("node-c"), 5 * S)
    cluster.add_pod("mysql-0", "node-a", "pv-0")
    cluster.add_pod("mysql-1", "node-b", "pv-1", **storage)  # type: ignore[arg-type]
    cluster.add_primary_lease(NOW - 2 * S)  # renewing: the primary is alive on node-a
    cluster.serve_fixed()
    ctl = controller(str(kmock.url))
    [decision] = await asyncio.to_thread(ctl.run_pass, True)
    assert (decision.node, decision.action, decision.guard) == ("node-b", Action.SKIP, "storage")
    driver = "in-tree nfs" if "nfs" in storage else "CSI driver nfs.csi.k8s.io"
    assert decision.reason.startswith(f"mysql-1 (pv-1: {driver}): a pod that holds no primary "
                                      "Lease has no self-fence")
    assert node_writes(kmock) == []
    assert event_reasons(kmock) == ["TakeoverSkipped"]
    assert 'mysqlsts_takeover_skips_total{reason="storage"} 1.0' in \
        ctl.metrics.render().decode().splitlines()
    # On EBS the same replica moves while the primary renews elsewhere.
    cluster.add_pod("mysql-1", "node-b", "pv-1")
    [moved] = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    assert moved.action is Action.TAINT
    assert node_writes(kmock) == ["patch nodes/node-b"]


@pytest.mark.parametrize(("change", "reason"), [
    ("delete", "the primary Lease db/mysql-primary does not exist"),
    ("no-annotation", "carries no mysqlsts.io/self-fence-seconds annotation"),
    ("fail", "the primary Lease db/mysql-primary could not be read: HTTP 500"),
])
async def test_a_lease_that_proves_nothing_is_a_skip(
    kmock: kmock.KubernetesEmulator, change: str, reason: str
) -> None:
    cluster = FakeCluster(kmock)
    three_nodes(cluster, 400 * S)
    key = ("coordination.k8s.io/v1/leases", SET_NS, PRIMARY_LEASE)
    if change == "delete":
        del kmock.objects[key]
    elif change == "no-annotation":
        cluster.add_primary_lease(NOW - 400 * S, self_fence=None)
    else:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{SET_NS}/leases/{PRIMARY_LEASE}"
        kmock.fail[("GET", path)] = 500  # type: ignore[attr-defined]
    cluster.serve_fixed()
    [decision] = await asyncio.to_thread(controller(str(kmock.url)).run_pass, True)
    assert (decision.action, decision.guard) == (Action.SKIP, "lease")
    assert reason in decision.reason
    assert node_writes(kmock) == []
    assert event_reasons(kmock) == ["TakeoverSkipped"]


async def test_a_fence_command_outranks_a_renewing_lease(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    """The machine powered off by the fence command: whatever the Lease says, its server is
    gone (a Lease renewed a second ago is then a stale view)."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, 400 * S)
    await asyncio.to_thread(renew, kmock, NOW - 1 * S)
    cluster.serve_fixed()
    script = tmp_path / "fence"
    script.write_text("#!/bin/sh\necho stopped\n")
    script.chmod(0o755)
    [decision] = await asyncio.to_thread(
        controller(str(kmock.url), fence_command=script).run_pass, True)
    assert decision.action is Action.TAINT and "says powered off" in decision.reason
    assert node_writes(kmock) == ["patch nodes/node-b"]


async def test_a_pass_that_finds_the_window_grown_says_so_once(
    kmock: kmock.KubernetesEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    """The sidecars' self-fence grew after the controller started (a rollout): each pass reads
    it from the Lease, logs the mismatch when it first sees it, and the Lease's own rule still
    holds the takeover until the Lease's window has passed."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, 900 * S)
    cluster.add_primary_lease(NOW - 900 * S, self_fence="400")
    cluster.serve_fixed()
    clock = FakeMonotonic()
    ctl = controller(str(kmock.url), once=False, monotonic=clock)
    await asyncio.to_thread(ctl.run_pass, True)
    clock.now += 301
    [held] = await asyncio.to_thread(ctl.run_pass, True)
    assert (held.action, held.guard) == (Action.SKIP, "lease")
    assert "must stay unchanged for 425s" in held.reason
    warned = [r.getMessage() for r in caplog.records if "shorter than the primary" in
              r.getMessage()]
    assert warned == [
        "--node-down-after 300s is shorter than the primary Lease db/mysql-primary's window: "
        "its duration 15s + the sidecars' self-fence 400s + --lease-margin 10s = 425s: "
        "takeovers of its holder's node wait for the Lease's window"]
    clock.now += 125
    [taint] = await asyncio.to_thread(ctl.run_pass, True)
    assert taint.action is Action.TAINT
    assert node_writes(kmock) == ["patch nodes/node-b"]


async def test_a_window_shorter_than_the_leases_refuses_to_start(
    kmock: kmock.KubernetesEmulator, tmp_path: Path
) -> None:
    """The sidecars say (on the Lease) that their server may write for 400 s after a renew
    began: `--node-down-after 300` cannot be right. One line, exit 2, nothing written."""
    cluster = FakeCluster(kmock)
    three_nodes(cluster, 400 * S)
    cluster.add_primary_lease(NOW - 400 * S, self_fence="400")
    cluster.serve_fixed()
    kubeconfig = write_kubeconfig(tmp_path, str(kmock.url))
    for once in (["--once"], []):
        run = await run_takeover_cli(kubeconfig, *once, "--namespace", SET_NS,
                                     "--http-port", "0")
        assert run.returncode == 2, (run.out, run.err)
        lines = run.err.strip().splitlines()
        assert lines == [
            "Error: --node-down-after 300s is shorter than the primary Lease "
            "db/mysql-primary's window: its duration 15s + the sidecars' self-fence 400s + "
            "--lease-margin 10s = 425s"], lines
    assert writes(kmock) == []
    # With a window that covers it, the same Lease lets it run.
    run = await run_takeover_cli(kubeconfig, "--once", "--namespace", SET_NS,
                                 "--node-down-after", "425", "--dry-run")
    assert run.returncode == 0, run.err
