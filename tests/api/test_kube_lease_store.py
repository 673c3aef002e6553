"""The Kubernetes Lease store of the primary lease (adapters/kube_lease_store.py) over real HTTP
against the validating API server (kube-apiserver's 409 on a stale resourceVersion, 404 on a
PUT to a missing object, the URL's name in the body): renew, lose to another writer, conflict
on resourceVersion, a missing Lease, API errors that never show the token, and the sidecar's
PrimaryLease worker writing its claims through it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import kmock
import pymysql
import pytest
from kmock import KubernetesError

from mysqlsts.adapters.kube_lease_store import KubernetesLeaseStore
from mysqlsts.adapters.lease_store import LeaseConflict, LeaseUnavailable
from mysqlsts.core.kube_lease import SELF_FENCE_ANNOTATION
from mysqlsts.core.lease import GuardAction, LeaseRecord, LeaseTimings
from mysqlsts.sidecar.lease import PrimaryLease
from tests.ports import PortPool

pytestmark = pytest.mark.asyncio

NS, NAME = "db", "mysql-primary"
RESOURCE = "coordination.k8s.io/v1/leases"
PATH = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/{NAME}"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.pod-token-NEVER-LOGGED"
HOLDER = "mysql-0/0c6a1f52-6d2e-4f6b-8f5e-2b6b8b1c9d01"
WALL = 1_772_366_400.0  # 2026-03-01T12:00:00Z
free_port = PortPool("api")


def shipped_lease() -> dict[str, Any]:
    """k8s/base/lease.yaml as kube-apiserver stores it: an empty spec."""
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": NAME, "namespace": NS, "uid": "uid-lease",
                         "resourceVersion": "9001", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"app.kubernetes.io/part-of": "mysqlsts"}},
            "spec": {}}


@pytest.fixture
def token(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def store(server: kmock.KubernetesEmulator, token: Path) -> KubernetesLeaseStore:
    return KubernetesLeaseStore(NAME, NS, api_url=str(server.url), token_path=token)


def stored(server: kmock.KubernetesEmulator) -> dict[str, Any]:
    return dict(server.objects[RESOURCE, NS, NAME].raw)


def requests(server: kmock.KubernetesEmulator, method: str) -> list[Any]:
    return [r for r in server if str(getattr(r.method, "value", r.method)).upper() == method
            and r.url.path == PATH]


async def call(fn: Any, *args: Any) -> Any:
    """The store blocks; the API server serves on this test's event loop."""
    return await asyncio.to_thread(fn, *args)


async def test_renew_keeps_the_holder_and_bumps_the_version(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    leases = store(kmock, token)
    assert await call(leases.read, 5) == (None, "9001")  # the shipped Lease is free
    acquired = LeaseRecord(HOLDER, WALL, 15.0, 0, 10.0)
    v1 = await call(leases.write, acquired, "9001", 5)
    assert v1 != "9001"
    assert await call(leases.read, 5) == (acquired, v1)
    renewed = LeaseRecord(HOLDER, WALL + 2, 15.0, 0, 10.0)
    v2 = await call(leases.write, renewed, v1, 5)
    assert int(v2) > int(v1)
    assert await call(leases.read, 5) == (renewed, v2)

    lease = stored(kmock)
    assert lease["spec"] == {"holderIdentity": HOLDER, "leaseDurationSeconds": 15,
                             "renewTime": "2026-03-01T12:00:02.000000Z",
                             "acquireTime": "2026-03-01T12:00:00.000000Z",
                             "leaseTransitions": 0}
    assert lease["metadata"]["annotations"] == {SELF_FENCE_ANNOTATION: "10"}
    assert lease["metadata"]["labels"] == {"app.kubernetes.io/part-of": "mysqlsts"}  # kept
    assert lease["metadata"]["uid"] == "uid-lease"
    # Each PUT was a compare-and-swap on the version read, with the pod's token.
    puts = requests(kmock, "PUT")
    assert [p.data["metadata"]["resourceVersion"] for p in puts] == ["9001", v1]
    assert {r.headers["Authorization"] for r in kmock if r.url.path == PATH} == {
        f"Bearer {TOKEN}"}


async def test_lose_another_writer_takes_it_and_the_next_write_conflicts(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    ours, theirs = store(kmock, token), store(kmock, token)  # two pods
    _, version = await call(ours.read, 5)
    mine = await call(ours.write, LeaseRecord(HOLDER, WALL, 15.0, 0, 10.0), version, 5)
    _, seen = await call(theirs.read, 5)
    assert seen == mine
    await call(theirs.write, LeaseRecord("mysql-0/other-uid", WALL + 20, 15.0, 1, 10.0), seen, 5)
    with pytest.raises(LeaseConflict, match=f"Lease {NS}/{NAME} changed since it was read"):
        await call(ours.write, LeaseRecord(HOLDER, WALL + 2, 15.0, 0, 10.0), mine, 5)
    record, _ = await call(ours.read, 5)
    assert record is not None and (record.holder, record.transitions) == ("mysql-0/other-uid", 1)
    assert stored(kmock)["spec"]["holderIdentity"] == "mysql-0/other-uid"


async def test_a_stale_resource_version_is_a_conflict_and_one_of_two_racers_wins(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    a, b = store(kmock, token), store(kmock, token)
    (_, va), (_, vb) = await call(a.read, 5), await call(b.read, 5)
    assert va == vb == "9001"
    results = await asyncio.gather(
        call(a.write, LeaseRecord("mysql-0/a", WALL, 15.0, 0), va, 5),
        call(b.write, LeaseRecord("mysql-0/b", WALL, 15.0, 0), vb, 5),
        return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["LeaseConflict", "str"]
    # A store that never read this version re-reads before writing: a moved version is the
    # same conflict, and nothing is PUT.
    fresh = store(kmock, token)
    puts = len(requests(kmock, "PUT"))
    with pytest.raises(LeaseConflict, match="resourceVersion"):
        await call(fresh.write, LeaseRecord("mysql-0/c", WALL, 15.0, 0), "9001", 5)
    assert len(requests(kmock, "PUT")) == puts


async def test_the_api_server_refuses_a_stale_put_itself(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    """The 409 comes from the server, not from the store's own check."""
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    leases = store(kmock, token)
    await call(leases.read, 5)  # caches the object at 9001
    other = store(kmock, token)
    await call(other.read, 5)
    await call(other.write, LeaseRecord("mysql-0/b", WALL, 15.0, 0), "9001", 5)
    with pytest.raises(LeaseConflict, match="409 Conflict"):
        await call(leases.write, LeaseRecord("mysql-0/a", WALL, 15.0, 0), "9001", 5)
    [_, refused] = requests(kmock, "PUT")
    assert refused.data["metadata"]["resourceVersion"] == "9001"


async def test_a_missing_lease_is_unavailable_and_named(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    kmock.objects["coordination.k8s.io/v1/leases", NS, "someone-else"] = {
        **shipped_lease(), "metadata": {**shipped_lease()["metadata"], "name": "someone-else"}}
    leases = store(kmock, token)
    with pytest.raises(LeaseUnavailable, match=f"Lease {NS}/{NAME} does not exist"):
        await call(leases.read, 5)
    with pytest.raises(LeaseUnavailable, match=f"Lease {NS}/{NAME} does not exist"):
        await call(leases.write, LeaseRecord(HOLDER, WALL, 15.0, 0), "9001", 5)
    # Deleted after it was read: the PUT itself gets the 404 (an update never creates a Lease).
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    _, version = await call(leases.read, 5)
    kmock.objects[RESOURCE, NS, NAME].delete()
    with pytest.raises(LeaseUnavailable, match=r"does not exist \(404 on update\)"):
        await call(leases.write, LeaseRecord(HOLDER, WALL, 15.0, 0), version, 5)
    assert len(requests(kmock, "PUT")) == 1


async def test_a_forbidden_request_is_unavailable_and_never_shows_the_token(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    def forbidden(request: Any) -> None:
        # A server that echoes what it received (a proxy's error page, a debug build).
        raise KubernetesError(
            status=403, reason="Forbidden",
            message=f'leases.coordination.k8s.io "{NAME}" is forbidden: User '
                    f'"system:serviceaccount:{NS}:mysql" cannot get resource "leases" '
                    f"(request had {request.headers.get('Authorization')})")

    kmock["get", PATH] << forbidden
    with pytest.raises(LeaseUnavailable) as caught:
        await call(store(kmock, token).read, 5)
    message = str(caught.value)
    assert TOKEN not in message
    assert "403" in message and "cannot get resource" in message and "Bearer <token>" in message
    assert "\n" not in message


async def test_unauthorized_and_server_errors_are_unavailable(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    leases = store(kmock, token)
    for status in (401, 500, 503):
        kmock.fail[("GET", PATH)] = status  # type: ignore[attr-defined]
        with pytest.raises(LeaseUnavailable, match=str(status)) as caught:
            await call(leases.read, 5)
        assert TOKEN not in str(caught.value)
    del kmock.fail[("GET", PATH)]  # type: ignore[attr-defined]
    _, version = await call(leases.read, 5)
    kmock.fail[("PUT", PATH)] = 500  # type: ignore[attr-defined]
    with pytest.raises(LeaseUnavailable, match="500"):
        await call(leases.write, LeaseRecord(HOLDER, WALL, 15.0, 0), version, 5)


@pytest.mark.parametrize("body,says", [
    (b"<html>gateway</html>", "not JSON"),
    (b"[1, 2]", "not an object"),
    ({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"resourceVersion": "1"}},
     "not a Lease"),
    ({"kind": "Lease", "metadata": {"name": NAME}, "spec": {}}, "resourceVersion"),
    ({"kind": "Lease", "metadata": {"resourceVersion": "1"},
      "spec": {"holderIdentity": HOLDER, "leaseDurationSeconds": 15, "renewTime": "noon"}},
     "RFC 3339"),
])
async def test_a_body_that_is_not_a_lease_is_unavailable(
        kmock: kmock.KubernetesEmulator, token: Path, body: Any, says: str) -> None:
    kmock["get", PATH] << body
    with pytest.raises(LeaseUnavailable, match=says):
        await call(store(kmock, token).read, 5)


async def test_the_token_is_read_again_for_every_request(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    leases = store(kmock, token)
    _, version = await call(leases.read, 5)
    token.write_text("rotated-token\n")  # the kubelet replaced the projected token
    await call(leases.write, LeaseRecord(HOLDER, WALL, 15.0, 0), version, 5)
    assert [r.headers["Authorization"] for r in kmock if r.url.path == PATH] == [
        f"Bearer {TOKEN}", "Bearer rotated-token"]


async def test_a_token_with_a_line_break_inside_is_refused_without_showing_it(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    token.write_text("first-half\nsecond-half\n")  # http.client would echo it in its error
    with pytest.raises(LeaseUnavailable, match="not one token") as raised:
        await call(store(kmock, token).read, 5)
    assert "half" not in str(raised.value)
    assert not [r for r in kmock if r.url.path == PATH]  # nothing was sent


async def test_the_validating_server_refuses_a_put_whose_name_is_not_the_urls(
        kmock: kmock.KubernetesEmulator, token: Path) -> None:
    """kube-apiserver's check, kept here so the store is tested against it."""
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    other = KubernetesLeaseStore("other-lease", NS, api_url=str(kmock.url), token_path=token)
    other._last = shipped_lease()  # a body naming mysql-primary, sent to other-lease's URL
    kmock.objects[RESOURCE, NS, "other-lease"] = {
        **shipped_lease(), "metadata": {**shipped_lease()["metadata"], "name": "other-lease"}}
    with pytest.raises(LeaseUnavailable, match="does not match the name on the URL"):
        await call(other.write, LeaseRecord(HOLDER, WALL, 15.0, 0), "9001", 5)


# -- the PrimaryLease worker through this store ------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def worker(server: kmock.KubernetesEmulator, token: Path, tmp_path: Path,
           clock: Clock) -> PrimaryLease:
    """The worker as app.py builds it, against a server port nothing listens on (what the
    server does under the fence is tests/integration/test_primary_lease.py's)."""
    port = free_port()

    def connect() -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(host="127.0.0.1", port=port, user="root", password="x",
                               connect_timeout=0.5)

    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    return PrimaryLease(store(server, token), LeaseTimings(15, 10, 2), holder=HOLDER,
                        self_fence=lambda: 10.0, data_dir=data, connect=connect, monotonic=clock,
                        wall=lambda: WALL + clock.now - 1_000.0, stop=threading.Event())


async def test_the_primary_lease_worker_acquires_renews_and_stops_when_another_holds_it(
        kmock: kmock.KubernetesEmulator, token: Path, tmp_path: Path) -> None:
    kmock.objects[RESOURCE, NS, NAME] = shipped_lease()
    clock = Clock()
    lease = worker(kmock, token, tmp_path, clock)
    await call(lease.round)  # acquires the free Lease, and lifts read-only
    assert lease.held and lease.summary()["store"] == f"kubernetes:{NS}/{NAME}"
    acquired = stored(kmock)
    assert acquired["spec"]["holderIdentity"] == HOLDER
    assert acquired["spec"]["acquireTime"] == "2026-03-01T12:00:00.000000Z"
    assert acquired["metadata"]["annotations"][SELF_FENCE_ANNOTATION] == "10"

    clock.now += 2
    await call(lease.round)
    renewed = stored(kmock)
    assert renewed["spec"]["renewTime"] == "2026-03-01T12:00:02.000000Z"
    assert renewed["spec"]["acquireTime"] == acquired["spec"]["acquireTime"]
    assert renewed["spec"]["leaseTransitions"] == 0
    assert int(renewed["metadata"]["resourceVersion"]) > int(
        acquired["metadata"]["resourceVersion"])

    # Another pod takes it (e.g. after watching it unchanged): the worker sees the holder
    # change at its next read, stops renewing at once and fences (it may have made its server
    # writable).
    other = store(kmock, token)
    _, version = await call(other.read, 5)
    await call(other.write, LeaseRecord("mysql-0/replacement", WALL + 30, 15.0, 1, 10.0),
               version, 5)
    puts = len(requests(kmock, "PUT"))
    for _ in range(3):
        clock.now += 2
        await call(lease.round)
    assert not lease.held and lease.fenced
    assert lease.summary()["holder"] == "mysql-0/replacement"
    assert len(requests(kmock, "PUT")) == puts  # it only reads now
    assert stored(kmock)["spec"]["holderIdentity"] == "mysql-0/replacement"
    assert await call(lease.enforce) is GuardAction.FENCE
