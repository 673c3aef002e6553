"""Every overlay renders, validates against Kubernetes' and prometheus-operator's schemas, and
wires the pod the way docs/contract.md and issue 5 say."""

from __future__ import annotations

import base64
import copy
import json
import os
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from manifest_support import (
    DASHBOARD,
    K8S,
    MAKE_SECRETS,
    OVERLAYS,
    REPO,
    ROOT_CLIENT_CNF,
    SECRET_FILES,
    SECRET_KEYS,
    client_cnf_options,
    copy_k8s_without_secrets,
    find_tool,
    kustomize,
)

pytestmark = pytest.mark.manifests

RENDERS = ("root", *OVERLAYS)
CRD_KINDS = {"PodMonitor", "PrometheusRule"}
SCHEMAS = Path(__file__).resolve().parent / "schemas"
K8S_VERSION = kubernetes_validate.latest_version()

Doc = dict[str, Any]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def containers(sts: Doc) -> dict[str, Doc]:
    spec = sts["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec["initContainers"] + spec["containers"]}


def mounts(container: Doc) -> dict[str, Doc]:
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def env(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def validate_object(doc: Doc) -> None:
    if doc["kind"] in CRD_KINDS:
        schema = json.loads((SCHEMAS / f"{doc['kind'].lower()}.schema.json").read_text())
        jsonschema.validate(doc, schema)
    else:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("render", RENDERS)
def test_every_object_validates(rendered: dict[str, list[Doc]], render: str) -> None:
    docs = rendered[render]
    assert any(d["kind"] == "StatefulSet" for d in docs)
    for doc in docs:
        try:
            validate_object(doc)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{render}: {doc['kind']}/{doc['metadata']['name']}: {exc}")


def test_validation_is_strict(rendered: dict[str, list[Doc]]) -> None:
    """A misspelt field must fail, for core objects and for the prometheus-operator ones."""
    docs = rendered["monitoring"]
    sts = copy.deepcopy(one(docs, "StatefulSet"))
    sts["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_object(sts)
    for kind in CRD_KINDS:
        crd = copy.deepcopy(one(docs, kind))
        crd["spec"]["selectr"] = {}
        with pytest.raises(jsonschema.ValidationError):
            validate_object(crd)
    rule = copy.deepcopy(one(docs, "PrometheusRule"))
    rule["spec"]["groups"][0]["rules"][0]["for"] = "five minutes"
    with pytest.raises(jsonschema.ValidationError):
        validate_object(rule)


def test_kubernetes_validate_cli_strict(rendered: dict[str, list[Doc]], tmp_path: Path) -> None:
    """The same check through the tool's own command line, as a user would run it."""
    docs = [d for d in rendered["root"] if d["kind"] not in CRD_KINDS]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    tool = find_tool("kubernetes-validate", "MYSQLSTS_KUBERNETES_VALIDATE")
    assert tool, "kubernetes-validate not found: run scripts/setup-host test"
    done = subprocess.run(
        [tool, "--strict", "--quiet", str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_make_secrets_creates_private_random_files_and_keeps_existing_ones(
    kubectl: str, tmp_path: Path
) -> None:
    root = tmp_path / "k8s"
    copy_k8s_without_secrets(root)
    (root / "secrets" / "clone-token").write_text("kept-token")
    script = str(MAKE_SECRETS)
    done = subprocess.run([script, str(root / "secrets")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    values = {key: (root / "secrets" / key).read_text() for key in SECRET_FILES}
    assert values["clone-token"] == "kept-token"
    created = [values[key] for key in SECRET_KEYS if key != "clone-token"]
    assert len(set(created)) == 3 and all(len(value) >= 40 for value in created)
    for key in SECRET_FILES:
        if key != "clone-token":
            assert stat.S_IMODE(os.stat(root / "secrets" / key).st_mode) == 0o600, key
    for value in values.values():  # never echoed
        assert value not in done.stdout + done.stderr
    # The client cnf logs in as root with root-password, as the client's own parser reads it.
    assert client_cnf_options(values[ROOT_CLIENT_CNF], tmp_path) == [
        "--user=root", f"--password={values['root-password']}"]
    docs = kustomize(kubectl, root)
    secret = one(docs, "Secret", "mysql-secrets")
    assert base64.b64decode(secret["data"]["clone-token"]).decode() == "kept-token"
    bad = subprocess.run([script, str(tmp_path / "nowhere")], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr


def test_make_secrets_quotes_any_root_password_and_reports_a_stale_cnf(tmp_path: Path) -> None:
    """A password of the user's own, with the characters an option file treats specially, is
    read back intact; a kept cnf that no longer holds root-password is one line and exit 1,
    and is not rewritten (the user may have meant it)."""
    password = 'a"b\\c#d e\'f;g'
    (tmp_path / "root-password").write_text(password + "\n")
    done = subprocess.run([str(MAKE_SECRETS), str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    cnf = (tmp_path / ROOT_CLIENT_CNF).read_text()
    assert client_cnf_options(cnf, tmp_path) == ["--user=root", f"--password={password}"]
    (tmp_path / "root-password").write_text("changed-password")
    again = subprocess.run([str(MAKE_SECRETS), str(tmp_path)], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 1
    [line] = [x for x in again.stderr.splitlines() if "kept" not in x]
    assert ROOT_CLIENT_CNF in line and "root-password" in line
    assert password not in again.stderr and "changed-password" not in again.stderr
    assert (tmp_path / ROOT_CLIENT_CNF).read_text() == cnf


def test_root_needs_the_secret_files(kubectl: str, tmp_path: Path) -> None:
    """Without the user's files `kubectl apply -k k8s/` must fail, naming the missing file,
    rather than deploy a set with no Secret."""
    root = tmp_path / "k8s"
    copy_k8s_without_secrets(root)
    with pytest.raises(AssertionError, match="root-password"):
        kustomize(kubectl, root)


@pytest.mark.parametrize(
    "render", ["root", "minikube", "eks", "mysql8", "monitoring", "official-mariadb"]
)
def test_secret_comes_from_the_users_files(
    rendered: dict[str, list[Doc]], k8s_copy: tuple[Path, dict[str, str]], render: str
) -> None:
    _, values = k8s_copy
    secret = one(rendered[render], "Secret", "mysql-secrets")
    decoded = {k: base64.b64decode(v).decode().rstrip("\n") for k, v in secret["data"].items()}
    assert decoded == values


def test_demo_secrets_are_marked_throwaway(rendered: dict[str, list[Doc]]) -> None:
    secret = one(rendered["demo"], "Secret", "mysql-secrets")
    assert sorted(secret["data"]) == sorted(SECRET_FILES)
    assert secret["metadata"]["labels"]["mysqlsts.dev/throwaway"] == "true"
    assert "DEMO ONLY" in (K8S / "overlays" / "demo" / "kustomization.yaml").read_text()


@pytest.mark.parametrize("render", RENDERS)
def test_pre_stop_logs_in_with_the_secrets_client_cnf(
    rendered: dict[str, list[Doc]], render: str, tmp_path: Path
) -> None:
    """No password on a command line or in a temp file of the hook's: the client reads the
    Secret's cnf, which holds the Secret's own root-password."""
    docs = rendered[render]
    mysql = containers(one(docs, "StatefulSet", "mysql"))["mysql"]
    pre_stop = " ".join(mysql["lifecycle"]["preStop"]["exec"]["command"])
    assert "--defaults-extra-file=/etc/mysqlsts/secrets/root-client.cnf" in pre_stop
    for leak in ("root-password", "password", "mktemp", "printf"):
        assert leak not in pre_stop.replace("root-client.cnf", ""), leak
    assert mounts(mysql)["/etc/mysqlsts/secrets"]["name"] == "secrets"
    secret = one(docs, "Secret", "mysql-secrets")
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert client_cnf_options(data[ROOT_CLIENT_CNF], tmp_path) == [
        "--user=root", f"--password={data['root-password'].rstrip()}"]


@pytest.mark.parametrize("render", RENDERS)
def test_statefulset_wiring(rendered: dict[str, list[Doc]], render: str) -> None:
    docs = rendered[render]
    sts = one(docs, "StatefulSet", "mysql")
    spec = sts["spec"]
    pod = spec["template"]["spec"]
    assert spec["serviceName"] == "mysql"
    assert spec["podManagementPolicy"] == "OrderedReady"  # pod n clones from pod n-1
    assert spec["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain",
        "whenScaled": "Retain",
    }
    assert [t["metadata"]["name"] for t in spec["volumeClaimTemplates"]] == ["data"]
    assert [c["name"] for c in pod["initContainers"]] == ["init", "clone"]
    assert [c["name"] for c in pod["containers"]] == ["mysql", "sidecar"]
    assert pod["terminationGracePeriodSeconds"] >= 90  # preStop (<= 65 s) + a clean shutdown
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 999
    assert pod["securityContext"]["fsGroup"] == 999
    assert pod["topologySpreadConstraints"]

    by_name = containers(sts)
    for name, container in by_name.items():
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert "memory" in container["resources"]["limits"], name

    for name in ("init", "clone", "sidecar"):
        pod_name = env(by_name[name])["POD_NAME"]
        assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", name
    assert by_name["init"]["command"] == ["mysqlsts", "init"]
    assert by_name["clone"]["command"] == ["mysqlsts", "clone"]
    assert by_name["sidecar"]["command"] == ["mysqlsts", "sidecar"]

    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts(by_name["init"])["/mnt/conf.d"]["name"] == "conf"
    assert mounts(by_name["init"])["/mnt/config-map"]["name"] == "config-map"
    assert mounts(by_name["mysql"])["/etc/mysql/conf.d"]["name"] == "conf"
    assert "emptyDir" in volumes["conf"]
    for name in ("clone", "mysql", "sidecar"):
        data = mounts(by_name[name])["/var/lib/mysql"]
        assert (data["name"], data.get("subPath")) == ("data", "mysql"), name
        assert mounts(by_name[name])["/etc/mysqlsts/secrets"]["name"] == "secrets", name

    # The volumes point at objects this render creates (kustomize renames the ConfigMap).
    config_maps = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    assert volumes["config-map"]["configMap"]["name"] in config_maps
    assert volumes["secrets"]["secret"]["secretName"] == "mysql-secrets"
    assert any(d["kind"] == "Secret" and d["metadata"]["name"] == "mysql-secrets" for d in docs)


def _probe_touches_sidecar(probe: Doc) -> bool:
    text = json.dumps(probe)
    return "httpGet" in probe or "8080" in text or "grpc" in probe


@pytest.mark.parametrize("render", RENDERS)
def test_probes_keep_mysqld_independent_of_the_sidecar(
    rendered: dict[str, list[Doc]], render: str
) -> None:
    by_name = containers(one(rendered[render], "StatefulSet", "mysql"))
    mysql, sidecar = by_name["mysql"], by_name["sidecar"]
    assert mysql["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert mysql["readinessProbe"]["httpGet"]["port"] in (8080, "http")
    for kind in ("livenessProbe", "startupProbe"):
        assert not _probe_touches_sidecar(mysql[kind]), f"mysql {kind} depends on the sidecar"
        command = " ".join(mysql[kind]["exec"]["command"])
        assert command.endswith(" ping")
        # No secret is read, none written to a temp file: ping proves liveness without one.
        assert "password" not in command and "secrets" not in command, command
    startup = mysql["startupProbe"]
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 600  # crash recovery
    assert sidecar["livenessProbe"]["httpGet"]["path"] == "/livez"
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports == {"clone": 3307, "http": 8080}


VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
OUR_SERVER = f"ghcr.io/mysqlsts/mysqlsts-server:{VERSION}"


@pytest.mark.parametrize(
    ("render", "flavor", "server", "tag", "root_env"),
    [
        ("root", "mariadb", OUR_SERVER, VERSION, None),
        ("minikube", "mariadb", OUR_SERVER, VERSION, None),
        ("demo", "mariadb", OUR_SERVER, VERSION, None),
        ("eks", "mariadb", OUR_SERVER, VERSION, None),
        ("official-mariadb", "mariadb", "mariadb:10.11", VERSION, "MARIADB_ROOT_PASSWORD_FILE"),
        ("mysql8", "mysql", "mysql:8.4", f"{VERSION}-mysql8", "MYSQL_ROOT_PASSWORD_FILE"),
    ],
)
def test_flavor_and_images(
    rendered: dict[str, list[Doc]], render: str, flavor: str, server: str, tag: str,
    root_env: str | None,
) -> None:
    """Our images at the package's version (what images/build.sh tags), the official server
    images only in their overlays, each with the variable its entrypoint reads."""
    by_name = containers(one(rendered[render], "StatefulSet", "mysql"))
    assert by_name["mysql"]["image"] == server
    assert by_name["init"]["image"] == f"ghcr.io/mysqlsts/mysqlsts-init:{tag}"
    assert by_name["clone"]["image"] == f"ghcr.io/mysqlsts/mysqlsts-init:{tag}"
    assert by_name["sidecar"]["image"] == f"ghcr.io/mysqlsts/mysqlsts-sidecar:{tag}"
    for name in ("init", "clone", "sidecar"):
        assert env(by_name[name])["MYSQLSTS_FLAVOR"]["value"] == flavor, name
    server_env = env(by_name["mysql"])
    if root_env is None:  # mysqlsts-server reads the Secret's file itself (mysqlsts bootstrap)
        assert set(server_env) == {"MYSQLSTS_WATCHDOG_TIMEOUT", "MYSQLSTS_WATCHDOG_GRACE"}
    else:  # (the base's watchdog timings may stay: the official entrypoint ignores them)
        assert [n for n in server_env if not n.startswith("MYSQLSTS_WATCHDOG_")] == [root_env]
        assert server_env[root_env]["value"] == "/etc/mysqlsts/secrets/root-password"
    client = "mysql" if flavor == "mysql" else "mariadb"
    admin = "mysqladmin" if flavor == "mysql" else "mariadb-admin"
    assert admin in " ".join(by_name["mysql"]["livenessProbe"]["exec"]["command"])
    pre_stop = " ".join(by_name["mysql"]["lifecycle"]["preStop"]["exec"]["command"])
    assert f"timeout 10 {client} --defaults-extra-file" in pre_stop
    assert ("STOP REPLICA" if flavor == "mysql" else "STOP ALL SLAVES") in pre_stop


def test_one_version_everywhere() -> None:
    """pyproject's version is the tag the manifests pin, the package reports and build.sh
    builds under the registry the manifests name."""
    import mysqlsts

    assert mysqlsts.__version__ == VERSION
    base = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    pinned = {entry["name"]: entry for entry in base["images"]}
    assert set(pinned) == {"mysqlsts-server", "mysqlsts-init", "mysqlsts-sidecar"}
    for name, entry in pinned.items():
        assert (entry["newName"], entry["newTag"]) == (f"ghcr.io/mysqlsts/{name}", VERSION)
    build = (REPO / "images" / "build.sh").read_text()
    assert "registry=${MYSQLSTS_IMAGE_REGISTRY:-ghcr.io/mysqlsts}" in build
    assert 'image="$registry/mysqlsts-$kind:$tag"' in build
    assert 'mysql) suffix="-mysql8" ;;' in build
    # The takeover component names its image in full; build.sh tags it the same way.
    takeover = yaml.safe_load_all((K8S / "components" / "takeover" / "deployment.yaml").read_text())
    [container] = next(d for d in takeover if d["kind"] == "Deployment")["spec"]["template"][
        "spec"]["containers"]
    assert container["image"] == f"ghcr.io/mysqlsts/mysqlsts-takeover:{VERSION}"
    assert 'image="$registry/mysqlsts-takeover:$tag"' in build
    assert "-f Dockerfile.takeover" in build


def test_minikube_never_pulls(rendered: dict[str, list[Doc]]) -> None:
    """The images are loaded into the node by hand (`minikube image load`), not pulled."""
    for name, container in containers(one(rendered["minikube"], "StatefulSet")).items():
        assert container["imagePullPolicy"] == "Never", name
    for name, container in containers(one(rendered["root"], "StatefulSet")).items():
        assert "imagePullPolicy" not in container, name  # a pinned tag: IfNotPresent


@pytest.mark.parametrize("render", RENDERS)
def test_buffer_pool_follows_the_servers_memory_limit(
    rendered: dict[str, list[Doc]], render: str
) -> None:
    by_name = containers(one(rendered[render], "StatefulSet"))
    limit = env(by_name["init"])["MYSQLSTS_SERVER_MEMORY_LIMIT"]["valueFrom"]["resourceFieldRef"]
    assert limit == {"containerName": "mysql", "resource": "limits.memory"}
    assert "memory" in by_name["mysql"]["resources"]["limits"]  # else: the node's memory


def test_services(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["root"]
    pod_labels = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    headless = one(docs, "Service", "mysql")["spec"]
    assert headless["clusterIP"] == "None"
    assert headless["publishNotReadyAddresses"] is True
    assert {p["name"]: p["port"] for p in headless["ports"]} == {"mysql": 3306, "clone": 3307}
    read = one(docs, "Service", "mysql-read")["spec"]
    assert read.get("publishNotReadyAddresses") is not True
    assert [p["port"] for p in read["ports"]] == [3306]
    for service in (headless, read):
        assert service["selector"].items() <= pod_labels.items()
    primary = one(docs, "Service", "mysql-primary")["spec"]
    assert primary.get("type", "ClusterIP") == "ClusterIP" and "clusterIP" not in primary
    assert primary.get("publishNotReadyAddresses") is not True
    assert [(p["port"], p["targetPort"]) for p in primary["ports"]] == [(3306, "mysql")]
    # mysql-0 only: the label the StatefulSet controller sets on each of its pods.
    assert primary["selector"] == {
        "app.kubernetes.io/name": "mysql",
        "statefulset.kubernetes.io/pod-name": "mysql-0",
    }
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"].items() <= pod_labels.items()


def test_network_policy(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["root"]
    pod_labels = one(docs, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    policy = one(docs, "NetworkPolicy")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    by_port = {rule["ports"][0]["port"]: rule for rule in policy["ingress"]}
    assert set(by_port) == {"mysql", "clone", "http"}
    assert "from" not in by_port["mysql"]  # clients from anywhere
    clone_from = by_port["clone"]["from"]
    assert clone_from == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mysql"}}}]
    http_from = by_port["http"]["from"]
    assert clone_from[0] in http_from  # the set's own pods: the isolation fence's peer probes
    assert any("namespaceSelector" in peer for peer in http_from)  # the monitoring namespace


@pytest.mark.parametrize(
    ("render", "storage_class"), [("minikube", "standard"), ("eks", "mysqlsts-gp3")]
)
def test_storage_class(rendered: dict[str, list[Doc]], render: str, storage_class: str) -> None:
    sts = one(rendered[render], "StatefulSet")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] == storage_class
    if render == "eks":
        sc = one(rendered[render], "StorageClass", storage_class)
        assert sc["provisioner"] == "ebs.csi.aws.com"
        assert sc["parameters"] == {
            "type": "gp3",
            "encrypted": "true",
            "csi.storage.k8s.io/fstype": "ext4",
        }
        assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
        spread = sts["spec"]["template"]["spec"]["topologySpreadConstraints"]
        keys = [c["topologyKey"] for c in spread]
        assert "topology.kubernetes.io/zone" in keys


def test_monitoring_objects_match_the_pods(rendered: dict[str, list[Doc]]) -> None:
    docs = rendered["monitoring"]
    sts = one(docs, "StatefulSet")
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    monitor = one(docs, "PodMonitor")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= pod_labels.items()
    sidecar_ports = {p["name"] for p in containers(sts)["sidecar"]["ports"]}
    assert [e["port"] for e in monitor["podMetricsEndpoints"]] == ["http"]
    assert "http" in sidecar_ports
    relabel = monitor["podMetricsEndpoints"][0]["relabelings"]
    assert {
        "sourceLabels": ["__meta_kubernetes_pod_controller_name"],
        "targetLabel": "statefulset",
    } in relabel
    dashboard = one(docs, "ConfigMap", "mysqlsts-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["mysqlsts-replication.json"]) == json.loads(
        DASHBOARD.read_text()
    )
    for render in ("root", "minikube", "eks", "mysql8", "demo"):
        assert not [d for d in rendered[render] if d["kind"] in CRD_KINDS], render


def test_images_cnf_copies_are_identical() -> None:
    pairs = {
        REPO / "images/cnf/mariadb/master.cnf": K8S / "base/cnf/mariadb/master.cnf",
        REPO / "images/cnf/mariadb/slave.cnf": K8S / "base/cnf/mariadb/slave.cnf",
        REPO / "images/cnf/mysql/master.cnf": K8S / "overlays/mysql8/cnf/master.cnf",
        REPO / "images/cnf/mysql/slave.cnf": K8S / "overlays/mysql8/cnf/slave.cnf",
    }
    for copy_path, source in pairs.items():
        assert copy_path.read_bytes() == source.read_bytes(), f"{copy_path} differs from {source}"


LEASE_ROLE = "mysql-primary-lease"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@pytest.mark.parametrize("render", RENDERS)
def test_the_pods_only_credentials_renew_the_primary_lease(
        rendered: dict[str, list[Doc]], render: str) -> None:
    """The set's account may get and update the one Lease `mysql-primary` and nothing else;
    nothing is bound to it but that Role; only the takeover controller gets more, on its own
    account."""
    docs = rendered[render]
    sts = one(docs, "StatefulSet", "mysql")
    pod = sts["spec"]["template"]["spec"]
    account = one(docs, "ServiceAccount", pod["serviceAccountName"])
    assert account["metadata"]["name"] == "mysql"
    assert account["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is False
    takeover = [{"kind": "ServiceAccount", "name": "mysqlsts-takeover",
                 "namespace": "mysqlsts-takeover"}]
    bindings = [d for d in docs if d["kind"] in {"RoleBinding", "ClusterRoleBinding"}]
    ours = [b for b in bindings if b["subjects"] != takeover]
    assert [(b["kind"], b["metadata"]["name"]) for b in ours] == [("RoleBinding", LEASE_ROLE)]
    [binding] = ours
    # No namespace: the subject is the binding's namespace's `mysql`, wherever it is applied.
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mysql"}]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": LEASE_ROLE}
    role = one(docs, "Role", LEASE_ROLE)
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "resourceNames": ["mysql-primary"], "verbs": ["get", "update"]}]
    roles = {d["metadata"]["name"] for d in docs if d["kind"] in {"Role", "ClusterRole"}}
    assert all(r.startswith("mysqlsts-takeover") for r in roles - {LEASE_ROLE}), render
    assert (roles != {LEASE_ROLE}) == (render == "takeover"), render


@pytest.mark.parametrize("render", RENDERS)
def test_the_primary_lease_ships_free_in_the_base(rendered: dict[str, list[Doc]],
                                                  render: str) -> None:
    """The pods cannot create it (no `create`: RBAC cannot limit it by name), so it is there
    from the start, with no holder."""
    lease = one(rendered[render], "Lease", "mysql-primary")
    assert lease["apiVersion"] == "coordination.k8s.io/v1"
    assert not lease.get("spec")
    assert "namespace" not in lease["metadata"]  # the set's, as the Role's and the pods'


@pytest.mark.parametrize("render", RENDERS)
def test_only_the_sidecar_mounts_the_lease_token(rendered: dict[str, list[Doc]],
                                                 render: str) -> None:
    sts = one(rendered[render], "StatefulSet", "mysql")
    pod = sts["spec"]["template"]["spec"]
    tokens = {v["name"]: v for v in pod["volumes"]
              if any("serviceAccountToken" in s for s in v.get("projected", {}).get("sources", []))}
    assert list(tokens) == ["lease-token"]
    sources = tokens["lease-token"]["projected"]["sources"]
    [token] = [s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s]
    assert token["path"] == "token" and not token.get("audience")  # the API server's audience
    assert 600 <= token["expirationSeconds"] <= 3607  # bound and short, rotated by the kubelet
    assert {"configMap": {"name": "kube-root-ca.crt",
                          "items": [{"key": "ca.crt", "path": "ca.crt"}]}} in sources
    assert {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {
        "fieldPath": "metadata.namespace"}}]}} in sources
    mounting = {name: m for name, c in containers(sts).items() for m in mounts(c).values()
                if m["name"] == "lease-token"}
    assert list(mounting) == ["sidecar"], render
    assert mounting["sidecar"]["mountPath"] == TOKEN_DIR and mounting["sidecar"]["readOnly"]
    for name, container in containers(sts).items():
        if name != "sidecar":
            assert not any(path.startswith("/var/run/secrets") for path in mounts(container))
    # The holder is <pod>/<uid>; the Lease is in the pod's namespace.
    sidecar_env = env(containers(sts)["sidecar"])
    assert sidecar_env["POD_UID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.uid"
    assert sidecar_env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.namespace")


def test_takeover_deployment(rendered: dict[str, list[Doc]]) -> None:
    """Two replicas on different nodes, non-root, read-only root, probes on its own HTTP port,
    a PDB; the variants add their action and nothing else to the plain component."""
    docs = rendered["takeover"]
    deployment = one(docs, "Deployment", "mysqlsts-takeover")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    assert spec["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    [container] = pod["containers"]
    assert container["command"] == ["mysqlsts", "takeover"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {e["name"] for e in container["env"]} >= {"POD_NAME", "POD_NAMESPACE",
                                                     "MYSQLSTS_TAKEOVER_NAMESPACE"}
    assert not any(e["name"] == "MYSQLSTS_TAKEOVER_ACTION" for e in container["env"])
    pdb = one(docs, "PodDisruptionBudget", "mysqlsts-takeover")["spec"]
    assert pdb["minAvailable"] == 1
    assert pdb["selector"]["matchLabels"] == pod_labels(deployment)
    assert one(docs, "ServiceAccount", "mysqlsts-takeover")["metadata"]["namespace"] == (
        "mysqlsts-takeover")


def pod_labels(workload: Doc) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


@pytest.mark.parametrize(("variant", "action"), [("takeover-delete-pods", "delete-pods"),
                                                 ("takeover-delete-node", "delete-node")])
def test_takeover_variants_validate(
    kubectl: str, k8s_copy: tuple[Path, dict[str, str]], tmp_path: Path, variant: str,
    action: str,
) -> None:
    root, _ = k8s_copy
    overlay = root / "overlays" / f"check-{variant}"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../../base"],
        "components": ["../../secrets", "../../components/takeover",
                       f"../../components/{variant}"]}))
    docs = kustomize(kubectl, overlay)
    for doc in docs:
        validate_object(doc)
    [container] = one(docs, "Deployment", "mysqlsts-takeover")["spec"]["template"]["spec"][
        "containers"]
    assert {"name": "MYSQLSTS_TAKEOVER_ACTION", "value": action} in container["env"]


def test_deploy_doc_loads_exactly_the_images_the_minikube_overlay_runs(
    rendered: dict[str, list[Doc]],
) -> None:
    """docs/deploy.md's one `minikube image load` line names every image the overlay runs."""
    text = (REPO / "docs" / "deploy.md").read_text()
    loads = [line for line in text.splitlines() if line.startswith("minikube image load ")]
    assert len(loads) == 1, loads
    loaded = set(loads[0].split()[3:])
    running = {c["image"] for c in containers(one(rendered["minikube"], "StatefulSet")).values()}
    assert loaded == running
    assert "make secrets" in text and "kubectl apply -n db -k k8s/overlays/minikube" in text
    assert "kubectl mysqlsts status -n db" in text


@pytest.mark.parametrize("render", RENDERS)
def test_the_isolation_fence_knows_the_set_size(rendered: dict[str, list[Doc]],
                                                render: str) -> None:
    """The sidecar's MYSQLSTS_REPLICAS is the StatefulSet's replicas: fewer would leave pods
    unprobed (a set of one never fences), more would probe pods that do not exist."""
    sts = one(rendered[render], "StatefulSet")
    sidecar_env = env(containers(sts)["sidecar"])
    assert sidecar_env["MYSQLSTS_REPLICAS"]["value"] == str(sts["spec"]["replicas"])


@pytest.mark.parametrize(("render", "watchdog"), [
    ("root", True), ("minikube", True), ("demo", True), ("eks", True),
    ("official-mariadb", False), ("mysql8", False),
])
def test_the_watchdog_shares_its_heartbeat_between_server_and_sidecar(
        rendered: dict[str, list[Doc]], render: str, watchdog: bool) -> None:
    """mysqlsts-server's watchdog reads the file the sidecar writes: one emptyDir at the
    default path in both containers, and the same timings; with an official server image
    (no watchdog) the sidecar writes none."""
    sts = one(rendered[render], "StatefulSet", "mysql")
    by_name = containers(sts)
    sidecar_env = env(by_name["sidecar"])
    if not watchdog:
        assert sidecar_env["MYSQLSTS_WATCHDOG_FILE"]["value"] == ""
        return
    assert "MYSQLSTS_WATCHDOG_FILE" not in sidecar_env  # the default path, in both
    for name in ("mysql", "sidecar"):
        mounts = {m["mountPath"]: m["name"] for m in by_name[name]["volumeMounts"]}
        assert mounts["/run/mysqlsts/watchdog"] == "watchdog", name
    for variable in ("MYSQLSTS_WATCHDOG_TIMEOUT", "MYSQLSTS_WATCHDOG_GRACE"):
        assert env(by_name["mysql"])[variable] == sidecar_env[variable], variable
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
    assert "emptyDir" in volumes["watchdog"]
