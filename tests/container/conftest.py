"""Fixtures of the container suite: the engine, the images under test, secrets, clusters.

The images under test are exactly those the manifests run: their names and tags are read from
k8s/base/kustomization.yaml (and k8s/overlays/mysql8 for MySQL), which images/build.sh builds.
Env: MYSQLSTS_TEST_FLAVOR (mariadb | mysql).
"""

from __future__ import annotations

import gc
import os
import secrets as random
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from container_pods import LABEL, REPO, Cluster, DnsServer, Engine, Flavor, Secrets
from docker.types import Mount
from lease_api import LeaseApi

pytestmark = pytest.mark.container


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.container)


def manifest_images(overlay: str | None = None) -> dict[str, str]:
    """Image name in the StatefulSet -> the reference kustomize renders it to, as the base (and
    `overlay`, when given) pin it. Read from the kustomization files, not rendered: the suite
    needs no kubectl."""
    def entries(path: Path) -> list[dict[str, str]]:
        return list(yaml.safe_load(path.read_text()).get("images", []))

    pinned: dict[str, str] = {}
    for entry in entries(REPO / "k8s" / "base" / "kustomization.yaml"):
        pinned[entry["name"]] = f"{entry.get('newName', entry['name'])}:{entry['newTag']}"
    if overlay is not None:
        for entry in entries(REPO / "k8s" / "overlays" / overlay / "kustomization.yaml"):
            for name, ref in pinned.items():  # an overlay names an image by its base newName
                repo, tag = ref.rsplit(":", 1)
                if entry["name"] in (name, repo):
                    pinned[name] = f"{entry.get('newName', repo)}:{entry.get('newTag', tag)}"
    return pinned


def takeover_manifest_image() -> str:
    """The image the takeover component's Deployment runs (it names it in full: the component
    is added to an overlay, not to the base whose `images:` pin the others)."""
    path = REPO / "k8s" / "components" / "takeover" / "deployment.yaml"
    deployment = next(d for d in yaml.safe_load_all(path.read_text())
                      if d and d["kind"] == "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return str(container["image"])


@pytest.fixture(scope="session")
def takeover_image(engine: Engine) -> str:
    """Built by images/build.sh for the mariadb flavor only (it has no MySQL variant)."""
    image = takeover_manifest_image()
    missing = engine.missing_images(Flavor("takeover", image, image, image, REPO))
    if missing:
        _skip_unless_required(f"image {image} not available here (run `make images`)")
    return image


@pytest.fixture(scope="session")
def flavor() -> Flavor:
    name = os.environ.get("MYSQLSTS_TEST_FLAVOR", "mariadb")
    if name not in ("mariadb", "mysql"):
        raise pytest.UsageError(f"MYSQLSTS_TEST_FLAVOR must be mariadb or mysql, not {name}")
    images = manifest_images("mysql8" if name == "mysql" else None)
    return Flavor(
        name=name,
        init_image=images["mysqlsts-init"],
        sidecar_image=images["mysqlsts-sidecar"],
        server_image=images["mysqlsts-server"],
        cnf_dir=REPO / "images" / "cnf" / name,
    )


def _skip_unless_required(reason: str) -> None:
    """Skip, except under `make test`, which builds the engine and images and so must never
    turn a broken set-up into a green run of skipped tests."""
    if os.environ.get("MYSQLSTS_CONTAINER_TESTS_REQUIRED") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def engine(flavor: Flavor) -> Iterator[Engine]:
    reason = ""
    with warnings.catch_warnings():
        # docker-py leaves the socket of a failed first request to the garbage collector.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            found = Engine()
            found.client.ping()
        except Exception as exc:  # any failure to reach an engine means: nothing to test on
            reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        gc.collect()
    if reason:
        _skip_unless_required(f"no Docker engine answers ({reason}); run scripts/ensure-dockerd")
    missing = found.missing_images(flavor)
    if missing:
        hint = "run `make images`" if flavor.name == "mariadb" else "pull or build them first"
        message = f"image {', '.join(missing)} not available here ({hint})"
        if flavor.name == "mariadb":
            _skip_unless_required(message)
        pytest.skip(message)
    found.sweep()
    found.create_network()
    try:
        yield found
    finally:
        found.sweep()


@pytest.fixture(scope="session")
def secrets() -> Iterator[Secrets]:
    with tempfile.TemporaryDirectory(prefix="mysqlsts-secrets-") as name:
        directory = Path(name)
        directory.chmod(0o755)
        values = {key: random.token_hex(16) for key in
                  ("root-password", "replication-password", "backup-password", "clone-token")}
        files = {key: f"{value}\n" for key, value in values.items()}
        # As `make secrets` writes it: the mysql container's preStop logs in with it.
        files["root-client.cnf"] = (
            f'[client]\nuser=root\npassword="{values["root-password"]}"\n')
        for key, content in files.items():
            path = directory / key
            path.write_text(content)
            # As the manifests' Secret volume (defaultMode 0440, fsGroup 999) when we may chown;
            # else world-readable, as a Secret's default mode is.
            try:
                os.chown(path, 0, 999)
                path.chmod(0o440)
            except PermissionError:
                path.chmod(0o644)
        yield Secrets(directory, values["root-password"])


@pytest.fixture(scope="session")
def lease_api(engine: Engine, flavor: Flavor) -> Iterator[LeaseApi]:
    """The API server of every cluster's primary lease (lease_api.py)."""
    with tempfile.TemporaryDirectory(prefix="mysqlsts-lease-api-") as name:
        api = LeaseApi(engine.client, flavor.sidecar_image, Path(name), {LABEL: "lease-api"})
        try:
            yield api
        finally:
            api.close()


@pytest.fixture(scope="module")
def make_cluster(
    engine: Engine, flavor: Flavor, secrets: Secrets, lease_api: LeaseApi
) -> Iterator[Callable[..., Cluster]]:
    """Clusters for one test module; each is torn down (containers and volumes) at its end."""
    made: list[Cluster] = []

    def make(prefix: str, dns: bool = False, env: dict[str, str] | None = None,
             mounts: list[Mount] | None = None) -> Cluster:
        cluster = Cluster(engine, flavor, secrets, f"mysqlsts-test-{prefix}", lease_api, dns=dns,
                          env=dict(env or {}), mounts=list(mounts or []))
        cluster.close()  # whatever a killed earlier run left under this name
        made.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.discard()


@pytest.fixture(scope="module")
def dns_server(engine: Engine, flavor: Flavor) -> Iterator[DnsServer]:
    server = DnsServer(engine, "mysqlsts-dns:test")  # images/build.sh, local base only
    if engine.missing_images(Flavor("dns", server.image, server.image, server.image, REPO)):
        pytest.skip(f"image {server.image} not available here (run `make images`)")
    try:
        yield server
    finally:
        server.stop()
