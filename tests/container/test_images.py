"""The images themselves, and the init container writing the pod's cnf into its volume."""

from __future__ import annotations

from typing import Any

import pytest
from container_pods import Cluster, Engine, Flavor, start_container


def run(engine: Engine, image: str, script: str, **kwargs: Any) -> tuple[int, str]:
    container = start_container(image, None, entrypoint=["sh", "-c"], command=[script], **kwargs)
    try:
        status = container.wait(timeout=60)
        return int(status["StatusCode"]), str(container.logs().decode(errors="replace"))
    finally:
        container.remove(force=True)


@pytest.mark.parametrize("kind,command", [("init", ["init"]), ("sidecar", ["sidecar"])])
def test_image_runs_mysqlsts_as_mysql_999(
    engine: Engine, flavor: Flavor, kind: str, command: list[str]
) -> None:
    image = getattr(flavor, f"{kind}_image")
    config = engine.client.images.get(image).attrs["Config"]
    assert config["User"] == "999:999"
    assert config["Entrypoint"] == ["mysqlsts"]
    assert config["Cmd"] == command
    assert f"MYSQLSTS_FLAVOR={flavor.name}" in config["Env"]

    tools = "mariabackup mbstream" if flavor.name == "mariadb" else "xtrabackup xbstream"
    code, out = run(engine, image, f"""
        set -e
        id -u; id -g
        for tool in {tools}; do command -v $tool >/dev/null || echo "missing $tool"; done
        # nothing of the build left behind: wheels, pip, caches, apt lists
        ls /tmp/wheels /root/.cache 2>/dev/null && echo leftover
        ls /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' && echo apt-lists
        mysqlsts --version
    """)
    assert code == 0, out
    lines = out.split()
    assert lines[:2] == ["999", "999"], out
    assert "missing" not in out and "leftover" not in out and "apt-lists" not in out, out
    assert "version" in out


def test_init_writes_role_cnf_and_server_id_into_the_conf_volume(
    make_cluster: Any, flavor: Flavor
) -> None:
    cluster: Cluster = make_cluster("init")
    primary, replica = cluster.pod(0), cluster.pod(2)
    for pod in (primary, replica):
        pod.ensure_volumes()
        pod.start_pause()
        pod.run_init()

    master = (flavor.cnf_dir / "master.cnf").read_text().strip()
    slave = (flavor.cnf_dir / "slave.cnf").read_text().strip()
    assert cluster.read_volume(primary.conf_volume, "master.cnf", strip=True) == master
    assert cluster.read_volume(primary.conf_volume, "slave.cnf") is None
    primary_id = cluster.read_volume(primary.conf_volume, "server-id.cnf", strip=True) or ""
    assert "server_id=100" in primary_id.splitlines()
    assert "report_host=mysql-0.mysql" in primary_id.splitlines()

    assert cluster.read_volume(replica.conf_volume, "slave.cnf", strip=True) == slave
    assert cluster.read_volume(replica.conf_volume, "master.cnf") is None
    replica_id = cluster.read_volume(replica.conf_volume, "server-id.cnf", strip=True) or ""
    assert "server_id=102" in replica_id.splitlines()

    # Written by uid 999, so the server (same uid) owns what it reads; re-running changes nothing.
    owners = cluster.run_on_volume(replica.conf_volume, "stat -c '%u:%g %n' /v/*")
    assert all(line.startswith("999:999 ") for line in owners.splitlines()), owners
    before = cluster.run_on_volume(replica.conf_volume, "md5sum /v/*")
    replica.run_init()
    assert cluster.run_on_volume(replica.conf_volume, "md5sum /v/*") == before


def test_init_refuses_a_pod_name_without_ordinal_in_one_line(
    make_cluster: Any, flavor: Flavor
) -> None:
    cluster: Cluster = make_cluster("badinit")
    pod = cluster.pod(0)
    pod.ensure_volumes()
    pod.start_pause()
    container = start_container(
        flavor.init_image, None, command=["init"], environment={"POD_NAME": "mysql"},
        network_mode=f"container:{pod.containers['pause'].id}", label=cluster.prefix,
        mounts=pod._mounts(data=False, secrets=False, config_map=True),
    )
    try:
        status = container.wait(timeout=60)
        err = container.logs(stdout=False).decode(errors="replace").strip()
    finally:
        container.remove(force=True)
    assert status["StatusCode"] != 0
    assert len(err.splitlines()) == 1 and "mysql" in err, err
    assert "Traceback" not in err
    assert cluster.run_on_volume(pod.conf_volume, "ls -A /v") == ""


@pytest.mark.parametrize("kind", ["init", "sidecar"])
def test_image_carries_the_s3_store_client(engine: Engine, flavor: Flavor, kind: str) -> None:
    """obstore's binary wheel is in the image and loads (the backup CronJob runs the init image):
    `backup list` reads a file:// store, and an s3:// store gets as far as the network, where an
    endpoint on the container's own loopback (no network at all: network_mode none) refuses it
    with one line, not "obstore not installed"."""
    image = getattr(flavor, f"{kind}_image")
    code, out = run(engine, image, """
        export PYTHONPATH=/opt/mysqlsts/lib  # the launcher runs with -I: not for it
        mysqlsts-python -c 'import obstore as o; print("obstore", o.__version__)'
        mkdir /tmp/store && mysqlsts backup list --store file:///tmp/store --json; echo "rc=$?"
        echo AK > /tmp/ak; echo SK > /tmp/sk
        MYSQLSTS_S3_ENDPOINT=http://127.0.0.1:9 MYSQLSTS_S3_ACCESS_KEY_FILE=/tmp/ak \
        MYSQLSTS_S3_SECRET_KEY_FILE=/tmp/sk mysqlsts backup list --store s3://bucket/prefix 2>&1
        echo "rc=$?"
    """, network_mode="none", tmpfs={"/tmp": "rw,size=16m,mode=1777"})
    assert code == 0, out
    assert "obstore 0." in out, out
    assert '"backups": []' in out and "rc=0" in out, out
    s3_lines = out.split("rc=0", 1)[1].strip().splitlines()
    assert len(s3_lines) == 2 and s3_lines[1] == "rc=1", out
    assert "store s3://bucket/prefix: cannot list" in s3_lines[0], out
    assert "obstore" not in s3_lines[0] and "Traceback" not in out, out
