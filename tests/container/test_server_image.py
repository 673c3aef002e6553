"""mysqlsts-server as the StatefulSet runs it: bootstrap on first start, the buffer pool init
chose from the memory limit, and the manifest's preStop hook."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from container_pods import REPO, SERVER_MEMORY_LIMIT, Cluster, Engine, Flavor


@pytest.fixture(scope="module")
def cluster(make_cluster: Callable[..., Cluster]) -> Iterator[Cluster]:
    made = make_cluster("server")
    made.scale(2)
    yield made


def pre_stop_command(flavor: Flavor) -> list[str]:
    """The mysql container's preStop exactly as the manifest writes it."""
    path = (REPO / "k8s" / "overlays" / "mysql8" / "mysql8-containers.yaml"
            if flavor.name == "mysql" else REPO / "k8s" / "base" / "statefulset.yaml")
    sts = yaml.safe_load(path.read_text())
    mysql = next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "mysql")
    command: list[str] = mysql["lifecycle"]["preStop"]["exec"]["command"]
    return command


def test_server_image_is_the_server_of_the_backup_tool(engine: Engine, flavor: Flavor) -> None:
    if flavor.name != "mariadb":
        pytest.skip("MySQL 8.4 runs the official server image")
    config = engine.client.images.get(flavor.server_image).attrs["Config"]
    assert config["User"] == "999:999"
    assert config["Entrypoint"] == ["mysqlsts-server"]
    versions = {}
    for image, tool in ((flavor.server_image, "mariadbd"), (flavor.sidecar_image, "mariabackup"),
                        (flavor.init_image, "mariabackup")):
        out = engine.client.containers.run(image, ["--version"], entrypoint=[tool], remove=True,
                                           stdout=True, stderr=True).decode()
        # "mariadbd  Ver 10.11.18-MariaDB-0+deb12u1 ..." and "mariabackup based on MariaDB
        # server 10.11.18-MariaDB ..." (on stderr)
        found = re.search(r"(\d+\.\d+\.\d+)-MariaDB", out)
        assert found, f"{tool} in {image} printed no version: {out}"
        versions[(image, tool)] = found.group(1)
    assert len(set(versions.values())) == 1, versions


def test_server_runs_with_the_buffer_pool_from_the_memory_limit(cluster: Cluster) -> None:
    # 60 % of 1 GiB, rounded down to whole 128 MiB chunks.
    assert SERVER_MEMORY_LIMIT == 1024**3
    for ordinal in (0, 1):
        rows = cluster.pod(ordinal).query("SELECT @@innodb_buffer_pool_size")
        assert int(rows[0][0]) == 512 * 1024 * 1024, ordinal


def replica_status(pod: Any, flavor: Flavor) -> dict[str, Any]:
    with pod.connect() as conn, conn.cursor() as cursor:
        cursor.execute("SHOW SLAVE STATUS" if flavor.name == "mariadb" else "SHOW REPLICA STATUS")
        names = [d[0] for d in cursor.description]
        row = cursor.fetchone()
    assert row is not None, f"replication is not configured on {pod.name}"
    return dict(zip(names, row, strict=True))


def test_pre_stop_stops_replication_and_returns(cluster: Cluster, flavor: Flavor) -> None:
    """Run the manifest's preStop in the server container, as the kubelet would before SIGTERM:
    the replica's replication stops at a transaction boundary, InnoDB is told to flush, and the
    hook returns within its bound. The primary's run passes too (nothing to stop there)."""
    io_column = "Slave_IO_Running" if flavor.name == "mariadb" else "Replica_IO_Running"
    replica = cluster.pod(1)
    assert replica_status(replica, flavor)[io_column] == "Yes"
    server: Any = replica.containers["server"]
    started = time.monotonic()
    result = server.exec_run(pre_stop_command(flavor), user="999:999")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 65
    assert replica_status(replica, flavor)[io_column] == "No"
    rows = replica.query("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
    assert float(rows[0][0]) == 0.0
    primary: Any = cluster.pod(0).containers["server"]
    assert primary.exec_run(pre_stop_command(flavor), user="999:999").exit_code == 0
