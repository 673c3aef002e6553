"""The backup CronJob's two steps (k8s/components/backup), run as the Job runs them (the backup
with its restore drill on MariaDB, then prune): the init image, the commands and environment of
the manifest (its ConfigMap's values, with a file:// store on a volume standing in for the
bucket), the Secrets as read-only files, a read-only root filesystem and no capabilities,
against a two-pod set on the test network. Then the disaster recovery of docs/backup.md: every
pod and volume gone, a new mysql-0 whose clone step restores the backup (MYSQLSTS_FROM_BACKUP)
and serves the rows written before the backup."""

from __future__ import annotations

import contextlib
import json
import os
import secrets as random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from container_pods import (
    NETWORK,
    REPO,
    SECRETS_MOUNT,
    Cluster,
    Engine,
    Flavor,
    start_container,
)
from docker.errors import NotFound
from docker.types import Mount

COMPONENT = REPO / "k8s" / "components" / "backup"
BACKUP_SECRETS = "/etc/mysqlsts/backup"
STORE_DIR = "/store"
STORE = f"file://{STORE_DIR}"


def job_pod() -> dict[str, Any]:
    cronjob = yaml.safe_load((COMPONENT / "cronjob.yaml").read_text())
    pod: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return pod


def config_values() -> dict[str, str]:
    """The component's ConfigMap, from its generator's literals (the suite needs no kubectl)."""
    kustomization = yaml.safe_load((COMPONENT / "kustomization.yaml").read_text())
    [generator] = [g for g in kustomization["configMapGenerator"] if g["name"] == "mysql-backup"]
    return dict(literal.split("=", 1) for literal in generator["literals"])


def step_env(container: dict[str, Any], flavor: str) -> dict[str, str]:
    """The step's environment as the kubelet sets it, with the store a file:// volume."""
    values = {**config_values(), "MYSQLSTS_STORE": STORE}
    env = {}
    for entry in container["env"]:
        ref = entry.get("valueFrom", {}).get("configMapKeyRef")
        env[entry["name"]] = values[ref["key"]] if ref else entry["value"]
    env["MYSQLSTS_FLAVOR"] = flavor  # docs/backup.md: the mysql flavor sets it so
    if flavor == "mysql":  # and turns the drill off: it restores MariaDB backups only
        env["MYSQLSTS_VERIFY_AFTER"] = "false"
    if env.get("MYSQLSTS_DONOR") == "auto":
        # Docker's DNS has no SRV records of a headless Service: the set's size instead, its
        # pods at the default peer names (mysql-N.mysql), which Docker's DNS resolves.
        env["MYSQLSTS_REPLICAS"] = "2"
    return env


@pytest.fixture(scope="module")
def store_volume(engine: Engine, flavor: Flavor) -> Iterator[str]:
    """A volume standing in for the bucket, writable by the job's uid 999."""
    name = f"mysqlsts-test-backup-store-{random.token_hex(3)}"
    engine.client.volumes.create(name, labels={"org.mysqlsts.test": "backup-store"})
    container = start_container(flavor.init_image, None, entrypoint=["sh", "-c"],
                                command=["chown 999:999 /v"], user="0:0",
                                mounts=[Mount("/v", name, type="volume")],
                                label="backup-store")
    try:
        container.wait(timeout=60)
    finally:
        container.remove(force=True)
    try:
        yield name
    finally:
        with contextlib.suppress(NotFound):
            engine.client.volumes.get(name).remove(force=True)


@pytest.fixture(scope="module")
def backup_secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("backup-secrets")
    directory.chmod(0o755)
    for key, value in (("encryption-key", random.token_urlsafe(32)),
                       ("s3-access-key", "AKIDEXAMPLE"), ("s3-secret-key", random.token_hex(16))):
        path = directory / key
        path.write_text(value + "\n")
        try:
            os.chown(path, 0, 999)
            path.chmod(0o440)
        except PermissionError:
            path.chmod(0o644)
    return directory


def run_step(engine: Engine, image: str, container: dict[str, Any], flavor: str,
             store: str, backup_secrets: Path, secrets_dir: Path) -> tuple[int, str, str]:
    """One step of the Job's pod, with the manifest's security context and mounts."""
    mounts = [Mount(STORE_DIR, store, type="volume"),
              Mount(BACKUP_SECRETS, str(backup_secrets), type="bind", read_only=True)]
    if any(m["mountPath"] == SECRETS_MOUNT for m in container["volumeMounts"]):
        mounts.append(Mount(SECRETS_MOUNT, str(secrets_dir), type="bind", read_only=True))
    assert container["command"][0] == "mysqlsts"  # the image's entrypoint
    started = start_container(
        image, None, command=container["command"][1:], environment=step_env(container, flavor),
        network=NETWORK, mounts=mounts, read_only=True, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], tmpfs={"/tmp": "rw,uid=999,gid=999,mode=1777"},
        label="backup-job")
    try:
        status = started.wait(timeout=300)
        out = started.logs(stderr=False).decode(errors="replace")
        err = started.logs(stdout=False).decode(errors="replace")
    finally:
        started.remove(force=True)
    return int(status["StatusCode"]), str(out), str(err)


def test_the_jobs_steps_back_up_a_replica_then_a_set_restores_from_it(
    store_volume: str, backup_secrets: Path, make_cluster: Callable[..., Cluster],
    engine: Engine,
) -> None:
    # store_volume first: set up before the clusters, so torn down after their containers.
    cluster = make_cluster("backupjob")
    flavor = cluster.flavor
    cluster.scale(2)
    notes = [random.token_hex(6) for _ in range(3)]
    cluster.sql_via("mysql-0.mysql", [
        "CREATE DATABASE IF NOT EXISTS drill",
        "CREATE TABLE drill.notes (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(32))",
        *[f"INSERT INTO drill.notes (note) VALUES ('{note}')" for note in notes],
    ])

    pod = job_pod()
    [backup] = pod["initContainers"]
    [prune] = pod["containers"]
    secrets_dir = cluster.secrets.directory
    code, out, err = run_step(engine, flavor.init_image, backup, flavor.name, store_volume,
                              backup_secrets, secrets_dir)
    assert code == 0, err[-3000:]
    backup_id = out.strip().splitlines()[-1]
    assert "donor auto chose mysql-1 at mysql-1.mysql:3307" in err  # the ready replica
    drilled = flavor.name == "mariadb"  # MYSQLSTS_VERIFY_AFTER: the drill in the same step
    assert (f"backup verify: backup {backup_id} verified: " in err) == drilled, err[-3000:]
    code, out, err = run_step(engine, flavor.init_image, prune, flavor.name, store_volume,
                              backup_secrets, secrets_dir)
    assert code == 0, err[-3000:]
    assert "kept=1 deleted=0" in out + err, out + err

    listed = start_container(
        flavor.init_image, None,
        command=["backup", "list", "--json", "--store", STORE,
                 "--encryption-key-file", f"{BACKUP_SECRETS}/encryption-key"],
        mounts=[Mount(STORE_DIR, store_volume, type="volume", read_only=True),
                Mount(BACKUP_SECRETS, str(backup_secrets), type="bind", read_only=True)],
        network_mode="none", label="backup-job")
    try:
        listed.wait(timeout=60)
        listing = json.loads(listed.logs(stderr=False).decode())
    finally:
        listed.remove(force=True)
    [entry] = listing["backups"]
    assert entry["id"] == backup_id and entry["encrypted"] is True and entry["gtid"], listing
    assert (entry["verified"] or {}).get("result") == ("ok" if drilled else None), listing

    # Every pod and volume gone; a new set whose mysql-0 restores the backup in its clone step.
    cluster.close()
    restored = make_cluster("backupjob-restored", env={
        "MYSQLSTS_FROM_BACKUP": STORE,
        "MYSQLSTS_ENCRYPTION_KEY_FILE": f"{BACKUP_SECRETS}/encryption-key"}, mounts=[
        Mount(STORE_DIR, store_volume, type="volume", read_only=True),
        Mount(BACKUP_SECRETS, str(backup_secrets), type="bind", read_only=True)])
    primary = restored.pod(0)
    primary.up()
    primary.wait_readyz(200)
    assert backup_id in (primary.clone_log or ""), primary.clone_log
    rows = {row[0] for row in primary.query("SELECT note FROM drill.notes")}
    assert rows == set(notes)
    restored.close()
