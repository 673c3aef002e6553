"""The issue's scenarios, each a fake cluster and one or two controller passes. The API tests
assert on their outcome; the RBAC test replays them all to learn which calls are made."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import kmock
from takeover_cluster import (
    NOW,
    FakeCluster,
    FakeMonotonic,
    attachment,
    controller,
    node,
    node_lease,
)

from mysqlsts.takeover.model import TAKEOVER_ANNOTATION, Action, Decision, Record

DOWN = {"ready": False}


@dataclass
class Outcome:
    cluster: FakeCluster
    decisions: list[Decision]
    standby: list[Decision] = field(default_factory=list)  # a second controller's, if any
    successor: list[Decision] = field(default_factory=list)  # the second, once the Lease expired


Scenario = Callable[[kmock.KubernetesEmulator], Awaitable[Outcome]]


async def run(cluster: FakeCluster, **overrides: Any) -> list[Decision]:
    cluster.serve_fixed()
    ctl = controller(str(cluster.server.url), **overrides)
    return await asyncio.to_thread(ctl.run_pass, True)


def three_nodes(cluster: FakeCluster, b_down_for: timedelta,
                lease_b: timedelta | None = None, now: datetime = NOW) -> None:
    """mysql-0 on node-b (the one that fails), mysql-1 on node-c, node-a empty. mysql-0 holds
    the primary Lease, last renewed when node-b went silent."""
    fresh = timedelta(seconds=5)
    cluster.add_node(node("node-a", now=now), fresh, now)
    cluster.add_node(node("node-b", ready=False, since=b_down_for, now=now),
                     lease_b or b_down_for, now)
    cluster.add_node(node("node-c", now=now), fresh, now)
    cluster.add_pod("mysql-0", "node-b", "pv-0")
    cluster.add_pod("mysql-1", "node-c", "pv-1")
    cluster.add_primary_lease(now - b_down_for)


async def down_299s(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server)
    three_nodes(cluster, timedelta(seconds=299))
    return Outcome(cluster, await run(cluster))


async def down_301s(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server)
    three_nodes(cluster, timedelta(seconds=301))
    return Outcome(cluster, await run(cluster))


async def lease_renewing(server: kmock.KubernetesEmulator) -> Outcome:
    """The loop: node-b Unknown for 15 minutes by the stamps, but this controller has only
    just started (it watches a full window itself), and the kubelet renews its Lease in
    between (alive: the count starts over)."""
    cluster = FakeCluster(server)
    three_nodes(cluster, timedelta(seconds=900), lease_b=timedelta(seconds=4))
    cluster.serve_fixed()
    clock = FakeMonotonic()
    ctl = controller(str(server.url), once=False, monotonic=clock)
    first = await asyncio.to_thread(ctl.run_pass, True)
    clock.now += 200
    renewed = node_lease("node-b", timedelta(seconds=0), NOW + timedelta(seconds=200))
    cluster.add("coordination.k8s.io/v1/leases", renewed)
    await asyncio.to_thread(ctl.run_pass, True)
    clock.now += 299
    last = await asyncio.to_thread(ctl.run_pass, True)
    return Outcome(cluster, first, successor=last)


async def two_of_three_down(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server)
    cluster.add_node(node("node-a"), timedelta(seconds=5))
    for name in ("node-b", "node-c"):
        cluster.add_node(node(name, ready=False, since=timedelta(seconds=600)),
                         timedelta(seconds=600))
    cluster.add_pod("mysql-0", "node-b", "pv-0")
    cluster.add_pod("mysql-1", "node-c", "pv-1")
    return Outcome(cluster, await run(cluster))


async def node_back(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server)
    record = Record(Action.TAINT, NOW - timedelta(minutes=20), taint_added=True)
    unreachable = {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}
    ours = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown",
            "effect": "NoExecute", "timeAdded": "2026-03-01T11:40:00Z"}
    cluster.add_node(node("node-a"), timedelta(seconds=5))
    cluster.add_node(node("node-b", since=timedelta(seconds=120),
                          annotations={TAKEOVER_ANNOTATION: record.to_json()},
                          taints=[unreachable, ours]), timedelta(seconds=5))
    cluster.add_node(node("node-c"), timedelta(seconds=5))
    cluster.add_pod("mysql-0", "node-a", "pv-0")  # moved while node-b was away
    cluster.add_pod("mysql-1", "node-c", "pv-1")
    return Outcome(cluster, await run(cluster))


async def two_controllers(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server)
    three_nodes(cluster, timedelta(seconds=400))
    cluster.serve_fixed()
    clock_b = FakeMonotonic()
    first = controller(str(server.url), identity="takeover-a")
    second = controller(str(server.url), identity="takeover-b", monotonic=clock_b)
    leader = await asyncio.to_thread(first.run_pass, True)
    standby = await asyncio.to_thread(second.run_pass, True)
    await asyncio.to_thread(first.run_pass, True)  # renews its Lease
    clock_b.now += 10
    await asyncio.to_thread(second.run_pass, True)  # sees the renewal: the Lease is alive
    # The first replica dies; the second takes the Lease once it has seen it unchanged for
    # the Lease's 30 s on its own clock (the stamps in it are the first replica's).
    clock_b.now += 31
    after = await asyncio.to_thread(second.run_pass, True)
    return Outcome(cluster, leader, standby, after)


async def dry_run(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server)
    three_nodes(cluster, timedelta(seconds=400))
    return Outcome(cluster, await run(cluster, dry_run=True))


async def old_api_server(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server, minor=27)
    three_nodes(cluster, timedelta(seconds=400))
    return Outcome(cluster, await run(cluster))


async def local_volume(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server)
    cluster.add_node(node("node-a"), timedelta(seconds=5))
    cluster.add_node(node("node-b", ready=False, since=timedelta(seconds=400)),
                     timedelta(seconds=400))
    cluster.add_node(node("node-c"), timedelta(seconds=5))
    cluster.add_pod("mysql-0", "node-b", "pv-0", local=True)
    return Outcome(cluster, await run(cluster))


async def paused(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server, paused=True)
    three_nodes(cluster, timedelta(seconds=400))
    return Outcome(cluster, await run(cluster))


async def delete_pods(server: kmock.KubernetesEmulator) -> Outcome:

    cluster = FakeCluster(server, minor=27)
    three_nodes(cluster, timedelta(seconds=400))
    cluster.add("storage.k8s.io/v1/volumeattachments", attachment("csi-b0", "node-b", "pv-0"))
    cluster.add("storage.k8s.io/v1/volumeattachments", attachment("csi-c1", "node-c", "pv-1"))
    return Outcome(cluster, await run(cluster, action=Action.DELETE_PODS))


async def delete_node(server: kmock.KubernetesEmulator) -> Outcome:
    cluster = FakeCluster(server)
    three_nodes(cluster, timedelta(seconds=400))
    return Outcome(cluster, await run(cluster, action=Action.DELETE_NODE))


# Which scenarios exercise which RBAC variant (the manifests' components).
TAINT_SCENARIOS: tuple[Scenario, ...] = (
    down_299s, down_301s, lease_renewing, two_of_three_down, node_back, two_controllers,
    dry_run, old_api_server, local_volume, paused,
)
VARIANT_SCENARIOS: dict[str, tuple[Scenario, ...]] = {
    "takeover": TAINT_SCENARIOS,
    "takeover-delete-pods": (*TAINT_SCENARIOS, delete_pods),
    "takeover-delete-node": (*TAINT_SCENARIOS, delete_node),
}
