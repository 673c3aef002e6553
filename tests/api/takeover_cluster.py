"""A fake cluster for kmock: objects shaped like a real API server's (the `kubernetes` client
validates responses strictly), and a reader of the requests the server received."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
import yaml
from kubernetes import client

from mysqlsts.takeover.command import DETACH_FENCED_DRIVERS
from mysqlsts.takeover.controller import Controller, Loop
from mysqlsts.takeover.kube import TakeoverApi
from mysqlsts.takeover.metrics import TakeoverMetrics
from mysqlsts.takeover.model import SELF_FENCE_ANNOTATION, Action, Settings

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
SET_NS = "db"
OWN_NS = "mysqlsts-takeover"
SELECTOR = "app.kubernetes.io/name=mysql"
PRIMARY_LEASE = "mysql-primary"

Doc = dict[str, Any]


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def version(minor: int = 30) -> Doc:
    return {
        "major": "1", "minor": str(minor), "emulationMajor": "1", "emulationMinor": str(minor),
        "minCompatibilityMajor": "1", "minCompatibilityMinor": str(minor - 1),
        "gitVersion": f"v1.{minor}.2", "gitCommit": "4b8e819355d791d96b7e9d9efe4cbafae2311c88",
        "gitTreeState": "clean", "buildDate": "2025-02-12T21:26:09Z", "goVersion": "go1.23.6",
        "compiler": "gc", "platform": "linux/amd64",
    }


def node(name: str, *, ready: bool | str = True, since: timedelta = timedelta(hours=1),
         labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
         taints: list[Doc] | None = None, now: datetime = NOW) -> Doc:
    """`ready`: True, or the Ready status ("Unknown": the kubelet went silent and the node
    lifecycle controller said so; "False": a living kubelet reports a problem). False means
    "Unknown", the common case of a dead machine."""
    status = "True" if ready is True else "Unknown" if ready is False else str(ready)
    ready = status == "True"
    changed = stamp(now - since)
    spec: Doc = {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]}
    if taints:
        spec["taints"] = taints
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {
            "name": name, "uid": f"uid-{name}", "resourceVersion": "1001",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       **(labels or {})},
            "annotations": annotations or {},
        },
        "spec": spec,
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "False" if ready else "Unknown",
                 "lastHeartbeatTime": changed, "lastTransitionTime": changed,
                 "reason": "KubeletHasSufficientMemory", "message": "ok"},
                {"type": "Ready", "status": status,
                 "lastHeartbeatTime": changed, "lastTransitionTime": changed,
                 "reason": {"True": "KubeletReady", "False": "KubeletNotReady"}.get(
                     status, "NodeStatusUnknown"),
                 "message": {"True": "kubelet is posting ready status",
                             "False": "container runtime is down"}.get(
                     status, "Kubelet stopped posting node status.")},
            ],
            "addresses": [{"type": "Hostname", "address": name}],
            "nodeInfo": {
                "machineID": "m", "systemUUID": "s", "bootID": "b", "kernelVersion": "6.1.0",
                "osImage": "Debian GNU/Linux 12", "containerRuntimeVersion": "containerd://1.7",
                "kubeletVersion": "v1.30.2", "kubeProxyVersion": "v1.30.2",
                "operatingSystem": "linux", "architecture": "amd64",
            },
        },
    }


def node_lease(name: str, renewed_ago: timedelta, now: datetime = NOW) -> Doc:
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": name, "namespace": "kube-node-lease", "resourceVersion": "2001",
                     "uid": f"lease-{name}", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                 "renewTime": micro(now - renewed_ago)},
    }


def pod(name: str, node_name: str, claim: str | None = None, *, uid: str | None = None,
        phase: str = "Running", owner: str | None = "mysql",
        labels: dict[str, str] | None = None) -> Doc:
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}] if claim else []
    owners = [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": owner,
               "uid": f"uid-sts-{owner}", "controller": True,
               "blockOwnerDeletion": True}] if owner else []
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": SET_NS, "uid": uid or f"uid-{name}",
                     "resourceVersion": "3001",
                     "labels": labels or {"app.kubernetes.io/name": "mysql"},
                     "ownerReferences": owners,
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": node_name, "volumes": volumes,
                 "containers": [{"name": "mysql", "image": "mariadb:10.11"}]},
        "status": {"phase": phase},
    }


def claim(name: str, volume: str) -> Doc:
    return {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": SET_NS, "uid": f"uid-{name}",
                     "resourceVersion": "4001"},
        "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": volume,
                 "resources": {"requests": {"storage": "10Gi"}}},
        "status": {"phase": "Bound"},
    }


def primary_lease(written: datetime, holder: str | None = "mysql-0/uid-mysql-0",
                  self_fence: str | None = "10", duration: int = 15,
                  version: str = "8001") -> Doc:
    """The set's primary Lease as the sidecars keep it (docs/contract.md): `written` is when
    kube-apiserver last stamped a write into its managedFields (the control plane's clock)."""
    spec: Doc = {"leaseDurationSeconds": duration}
    if holder:
        spec.update(holderIdentity=holder, renewTime=micro(written), acquireTime=micro(written))
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {
            "name": PRIMARY_LEASE, "namespace": SET_NS, "uid": "uid-primary-lease",
            "resourceVersion": version, "creationTimestamp": "2026-01-01T00:00:00Z",
            "annotations": {} if self_fence is None else {SELF_FENCE_ANNOTATION: self_fence},
            "managedFields": [{"manager": "mysqlsts", "operation": "Update",
                               "apiVersion": "coordination.k8s.io/v1", "time": stamp(written),
                               "fieldsType": "FieldsV1", "fieldsV1": {}}],
        },
        "spec": spec,
    }


def volume(name: str, local_on: str | None = None, driver: str = "ebs.csi.aws.com",
           nfs: bool = False) -> Doc:
    spec: Doc = {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Retain"}
    if local_on:
        spec["local"] = {"path": "/mnt/disks/ssd1"}
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [local_on]}]}]}}
    elif nfs:
        spec["nfs"] = {"server": "nfs.example", "path": f"/exports/{name}"}
    else:
        spec["csi"] = {"driver": driver, "volumeHandle": f"vol-{name}"}
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "5001"},
            "spec": spec, "status": {"phase": "Bound"}}


def attachment(name: str, node_name: str, pv: str) -> Doc:
    return {
        "apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
        "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "6001"},
        "spec": {"attacher": "ebs.csi.aws.com", "nodeName": node_name,
                 "source": {"persistentVolumeName": pv}},
        "status": {"attached": True},
    }


def namespace(name: str, annotations: dict[str, str] | None = None) -> Doc:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "uid": f"uid-{name}", "resourceVersion": "7001",
                         "annotations": annotations or {}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


@dataclass
class FakeCluster:
    """kmock seeded as a cluster: set pods on nodes, node Leases, the set's namespace."""

    server: kmock.KubernetesEmulator
    minor: int = 30
    paused: bool = False

    def serve_fixed(self, api_time: datetime | None = NOW) -> None:
        # kmock has no /version of our choosing and reads /api/v1/namespaces/NAME as a list.
        # The control plane's clock (the Date header) reads `api_time`.
        self.server.api_time = api_time  # type: ignore[attr-defined]
        self.server["get /version/"] << version(self.minor)
        annotations = {"mysqlsts.io/takeover-paused": "true"} if self.paused else {}
        self.server[f"get /api/v1/namespaces/{SET_NS}"] << namespace(SET_NS, annotations)

    def add(self, resource: str, doc: Doc) -> None:
        meta = doc["metadata"]
        self.server.objects[resource, meta.get("namespace"), meta["name"]] = doc

    def add_node(self, doc: Doc, lease_renewed_ago: timedelta, now: datetime = NOW) -> None:
        self.add("v1/nodes", doc)
        self.add("coordination.k8s.io/v1/leases",
                 node_lease(doc["metadata"]["name"], lease_renewed_ago, now))

    def add_pod(self, name: str, node_name: str, pv: str, local: bool = False,
                **storage: Any) -> None:
        claim_name = f"data-{name}"
        self.add("v1/pods", pod(name, node_name, claim_name))
        self.add("v1/persistentvolumeclaims", claim(claim_name, pv))
        self.add("v1/persistentvolumes", volume(pv, node_name if local else None, **storage))

    def add_primary_lease(self, written: datetime, **fields: Any) -> None:
        self.add("coordination.k8s.io/v1/leases", primary_lease(written, **fields))

    def primary_lease(self) -> Doc:
        return dict(self.server.objects["coordination.k8s.io/v1/leases", SET_NS,
                                        PRIMARY_LEASE].raw)

    def node(self, name: str) -> Doc:
        return dict(self.server.objects["v1/nodes", None, name].raw)


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "node_down_after": timedelta(seconds=300), "healthy_after": timedelta(seconds=60),
        "max_unhealthy": 1, "cooldown": timedelta(seconds=300), "action": Action.TAINT,
        "dry_run": False, "lease_margin": timedelta(seconds=10),
        "detach_fenced_drivers": frozenset(DETACH_FENCED_DRIVERS), "power_fence": False,
    }
    values.update(overrides)
    return Settings(**values)


class FakeMonotonic:
    """The controller's monotonic clock, moved by the test."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def controller(url: str, identity: str = "takeover-a", clock_at: datetime = NOW,
               fence_command: Path | None = None, once: bool = True,
               monotonic: FakeMonotonic | None = None, **overrides: Any) -> Controller:
    """A controller as `--once` runs it by default (silence judged by the control plane's
    stamps); `once=False` is the loop, which judges by what it observes on `monotonic`."""
    api = client.ApiClient(client.Configuration(host=url))
    chosen = settings(**{"power_fence": fence_command is not None, **overrides})
    takeover_api = TakeoverApi(api, namespace=SET_NS, selector=SELECTOR, statefulset="mysql",
                               own_namespace=OWN_NS, lease_name="mysqlsts-takeover",
                               identity=identity,
                               read_attachments=chosen.action is Action.DELETE_PODS,
                               primary_lease_name=PRIMARY_LEASE)
    loop = Loop(interval=timedelta(seconds=10), lease_duration=timedelta(seconds=30),
                renew_deadline=timedelta(seconds=20), fence_command=fence_command,
                fence_timeout=timedelta(seconds=10), once=once)
    return Controller(takeover_api, chosen, loop, TakeoverMetrics(), clock=lambda: clock_at,
                      monotonic=monotonic or FakeMonotonic())


_PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<gv>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?(?:/(?P<resource>[^/]+))?(?:/(?P<name>[^/]+))?/?$"
)
_VERBS = {("GET", False): "list", ("GET", True): "get", ("POST", False): "create",
          ("PUT", True): "update", ("PATCH", True): "patch", ("DELETE", True): "delete"}


@dataclass(frozen=True)
class Call:
    """One API request as RBAC sees it."""

    verb: str
    group: str
    resource: str
    namespace: str | None  # None: cluster-scoped
    name: str | None
    body: Any = None

    @property
    def writes(self) -> bool:
        return self.verb in ("create", "update", "patch", "delete")


def calls(server: kmock.KubernetesEmulator) -> list[Call]:
    """The resource requests the server received, in order (/version is public, not RBAC)."""
    out = []
    for request in server:
        path = request.url.path
        if path.rstrip("/") == "/version":
            continue
        match = _PATH.match(path)
        assert match, f"unexpected request {request.method} {path}"
        ns, resource, name = match["ns"], match["resource"], match["name"]
        if resource is None and ns is not None:  # /api/v1/namespaces/NAME
            resource, name, ns = "namespaces", ns, None
        method = str(request.method.value if hasattr(request.method, "value") else
                     request.method).upper()
        verb = _VERBS[(method, name is not None)]
        # The body as sent (the server stamps resourceVersion and uid into `request.data`).
        body = json.loads(request.body) if request.body else None
        out.append(Call(verb, match["group"] or "", resource or "", ns, name, body))
    return out


def writes(server: kmock.KubernetesEmulator) -> list[Call]:
    return [c for c in calls(server) if c.writes]


@dataclass(frozen=True)
class CliRun:
    returncode: int
    out: str
    err: str


def write_kubeconfig(tmp_path: Path, url: str, token: str | None = None) -> Path:
    """A kubeconfig for the fake API server, as an operator's would point at a cluster."""
    kubeconfig = tmp_path / "kubeconfig"
    user = {"token": token} if token else {}
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": url}}],
        "users": [{"name": "me", "user": user}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
    }))
    return kubeconfig


async def run_takeover_cli(kubeconfig: Path, *args: str,
                           env: dict[str, str] | None = None) -> CliRun:
    """`mysqlsts takeover ARGS` in a process of its own, with nothing but the kubeconfig."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mysqlsts", "takeover", *args,
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin",
             "HOME": str(kubeconfig.parent), **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return CliRun(proc.returncode, out.decode(), err.decode())
