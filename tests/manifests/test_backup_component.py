"""k8s/components/backup, as k8s/overlays/backup renders it with the set: a CronJob that backs up
from a replica's clone port and then prunes, wired to options the CLI really has, secrets as
files only, least privilege, and the Job's env accepted by the real commands."""

from __future__ import annotations

import base64
import os
import re
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml
from manifest_support import BACKUP_SECRET_FILES, K8S, kustomize

from mysqlsts.backup.verify import BackupUnverified
from mysqlsts.cli import cli
from mysqlsts.errors import ConfigError, MysqlstsError

pytestmark = pytest.mark.manifests

Doc = dict[str, Any]


def one(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def docs(rendered: dict[str, list[Doc]]) -> list[Doc]:
    return rendered["backup"]


@pytest.fixture(scope="module")
def cronjob(docs: list[Doc]) -> Doc:
    return one(docs, "CronJob", "mysql-backup")


def pod_spec(cronjob: Doc) -> Doc:
    spec: Doc = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def steps(cronjob: Doc) -> dict[str, Doc]:
    """The pod's containers in the order they run: init containers, then the main one."""
    spec = pod_spec(cronjob)
    return {c["name"]: c for c in [*spec.get("initContainers", []), *spec["containers"]]}


def config_map(docs: list[Doc], cronjob: Doc) -> Doc:
    """The ConfigMap the CronJob's env reads (its generated name has a hash suffix)."""
    names = {e["valueFrom"]["configMapKeyRef"]["name"] for c in steps(cronjob).values()
             for e in c["env"] if "valueFrom" in e}
    assert len(names) == 1, names
    return one(docs, "ConfigMap", names.pop())


def command_params(command: list[str]) -> list[click.Parameter]:
    """The click parameters of `command` (`mysqlsts backup prune`) itself: the options it reads
    (an enclosing group's, such as `backup`'s own when `prune` runs, are parsed but unused)."""
    assert command[0] == "mysqlsts"
    found: click.Command | None = cli
    for name in command[1:]:
        assert isinstance(found, click.Group), command
        found = found.get_command(click.Context(found), name)
        assert found is not None, f"mysqlsts has no command {command}"
    assert found is not None
    return list(found.params)


def envvars(param: click.Parameter) -> list[str]:
    if param.envvar is None:
        return []
    return [param.envvar] if isinstance(param.envvar, str) else list(param.envvar)


def env_values(container: Doc, data: dict[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet sets it, ConfigMap references resolved."""
    out = {}
    for entry in container["env"]:
        if "value" in entry:
            out[entry["name"]] = entry["value"]
        else:
            out[entry["name"]] = data[entry["valueFrom"]["configMapKeyRef"]["key"]]
    return out


def mounted_secret_files(cronjob: Doc, container: Doc) -> dict[str, tuple[str, str]]:
    """Path in the container -> (Secret name, key), for every Secret item it mounts."""
    volumes = {v["name"]: v for v in pod_spec(cronjob)["volumes"]}
    files = {}
    for mount in container.get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret is None:
            continue
        assert "items" in secret, f"{mount['name']}: mount only the keys the step reads"
        for item in secret["items"]:
            files[f"{mount['mountPath']}/{item['path']}"] = (secret["secretName"], item["key"])
    return files


def test_schedule_and_job_limits(cronjob: Doc) -> None:
    spec = cronjob["spec"]
    assert spec["schedule"] == "0 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert 0 < spec["startingDeadlineSeconds"] <= 3600
    assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
    job = spec["jobTemplate"]["spec"]
    assert 0 < job["backoffLimit"] <= 3
    # A stalled run ends before the next one is due (Forbid would skip it otherwise).
    assert 0 < job["activeDeadlineSeconds"] < 3600
    assert pod_spec(cronjob)["restartPolicy"] == "Never"


def test_backup_then_prune_in_the_set_images(
    cronjob: Doc, rendered: dict[str, list[Doc]]
) -> None:
    spec = pod_spec(cronjob)
    assert [c["name"] for c in spec["initContainers"]] == ["backup"]
    assert [c["name"] for c in spec["containers"]] == ["prune"]
    by_name = steps(cronjob)
    assert by_name["backup"]["command"] == ["mysqlsts", "backup"]
    assert by_name["prune"]["command"] == ["mysqlsts", "backup", "prune"]
    # The init image (it carries obstore), at the tag the set's own clone step runs.
    sts = one(rendered["backup"], "StatefulSet", "mysql")
    [clone] = [c for c in sts["spec"]["template"]["spec"]["initContainers"]
               if c["name"] == "clone"]
    assert {c["image"] for c in by_name.values()} == {clone["image"]}
    for container in by_name.values():
        assert "args" not in container


def test_least_privilege(cronjob: Doc, docs: list[Doc]) -> None:
    spec = pod_spec(cronjob)
    account = one(docs, "ServiceAccount", spec["serviceAccountName"])
    assert spec["serviceAccountName"] == "mysql-backup"  # its own, not the set's
    assert account["automountServiceAccountToken"] is False
    assert spec["automountServiceAccountToken"] is False
    for binding in (d for d in docs if d["kind"] in {"RoleBinding", "ClusterRoleBinding"}):
        assert all(s["name"] != "mysql-backup" for s in binding["subjects"]), binding
    security = spec["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    for name, container in steps(cronjob).items():
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True, name
        assert context["allowPrivilegeEscalation"] is False, name
        assert context["capabilities"]["drop"] == ["ALL"], name
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]), name
        assert "memory" in resources["limits"], name


def test_env_names_are_options_of_the_command(cronjob: Doc, docs: list[Doc]) -> None:
    data = config_map(docs, cronjob)["data"]
    used: set[str] = set()
    for name, container in steps(cronjob).items():
        known = {var for p in command_params(container["command"]) for var in envvars(p)}
        names = {e["name"] for e in container["env"]}
        assert names <= known, f"{name}: not options of {container['command']}: {names - known}"
        used |= {e["valueFrom"]["configMapKeyRef"]["key"] for e in container["env"]
                 if "valueFrom" in e}
    assert set(data) == used  # every setting is read by a step
    # The checks above must be able to fail: a misspelt variable is no option.
    prune = {var for p in command_params(["mysqlsts", "backup", "prune"]) for var in envvars(p)}
    assert "MYSQLSTS_RETAIN_WINDOW" in prune and "MYSQLSTS_RETAIN_WINDOWS" not in prune


def test_no_secret_in_env_args_or_config(
    cronjob: Doc, docs: list[Doc], k8s_copy: tuple[Path, dict[str, str]]
) -> None:
    root, values = k8s_copy
    secret_values = {*values.values(), *(
        (root / "overlays" / "backup" / key).read_text().strip() for key in BACKUP_SECRET_FILES)}
    data = config_map(docs, cronjob)["data"]
    for name, container in steps(cronjob).items():
        for entry in container["env"]:
            source = entry.get("valueFrom", {})
            assert set(source) <= {"configMapKeyRef"}, f"{name}: {entry} (Secrets are files)"
            value = entry.get("value", "")
            assert not any(secret in value for secret in secret_values), (name, entry["name"])
        words = " ".join(container["command"] + container.get("args", []))
        assert not any(secret in words for secret in secret_values), name
    assert not any(secret in value for secret in secret_values for value in data.values())


def test_mounted_secret_files_are_the_files_the_options_read(
    cronjob: Doc, docs: list[Doc]
) -> None:
    """Every *-file option of each step resolves (its variable, else its default) to a file a
    Secret item is mounted at, and every mounted Secret item is read by an option."""
    data = config_map(docs, cronjob)["data"]
    expected = {
        "backup": {("mysql-secrets", "clone-token"), ("mysql-backup", "encryption-key"),
                   ("mysql-backup", "s3-access-key"), ("mysql-backup", "s3-secret-key")},
        "prune": {("mysql-backup", "encryption-key"), ("mysql-backup", "s3-access-key"),
                  ("mysql-backup", "s3-secret-key")},
    }
    for name, container in steps(cronjob).items():
        environment = env_values(container, data)
        files = mounted_secret_files(cronjob, container)
        read = set()
        for param in command_params(container["command"]):
            [var] = envvars(param) or [""]
            if not (param.name or "").endswith("_file"):
                continue
            path = environment.get(var, param.default)
            if path is None:
                continue
            assert str(path) in files, f"{name}: --{param.name} reads {path}, not mounted"
            read.add(str(path))
        assert read == set(files), f"{name}: mounted but unread: {set(files) - read}"
        assert set(files.values()) == expected[name], name


def test_the_secrets_come_from_the_users_files(
    docs: list[Doc], k8s_copy: tuple[Path, dict[str, str]]
) -> None:
    root, _ = k8s_copy
    secret = one(docs, "Secret", "mysql-backup")
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {key: (root / "overlays" / "backup" / key).read_text()
                       for key in BACKUP_SECRET_FILES}
    ignored = (K8S / "overlays" / "backup" / ".gitignore").read_text().split()
    assert set(BACKUP_SECRET_FILES) <= set(ignored)


def test_the_donor_is_chosen_among_pods_the_job_may_reach(
    cronjob: Doc, docs: list[Doc]
) -> None:
    """`--donor auto`: the job finds the pods by the headless Service's SRV records of the clone
    port (the Service names that port and publishes pods that are not ready) and asks each
    sidecar's /readyz on the http port, with the option defaults that match the StatefulSet's
    ports; the NetworkPolicy lets the job's pods (only them) reach those two ports."""
    data = config_map(docs, cronjob)["data"]
    assert data["MYSQLSTS_DONOR"] == "auto"
    sts = one(docs, "StatefulSet", "mysql")
    sidecar = next(c for c in sts["spec"]["template"]["spec"]["containers"]
                   if c["name"] == "sidecar")
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    environment = env_values(steps(cronjob)["backup"], data)
    params = {p.name: p for p in command_params(["mysqlsts", "backup"])}
    for name in ("clone_port", "http_port", "service", "set_name", "replicas",
                 "peer_host_template", "peer_port_stride"):
        [var] = envvars(params[name])
        assert var not in environment, var  # the defaults are the set's
    assert params["clone_port"].default == ports["clone"]
    assert params["http_port"].default == ports["http"]
    assert params["set_name"].default == sts["metadata"]["name"]
    assert params["replicas"].default == 0  # the pods from DNS
    assert params["peer_port_stride"].default == 0
    service = one(docs, "Service", params["service"].default)
    assert service["metadata"]["name"] == sts["spec"]["serviceName"]
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"]
    assert {"name": "clone", "port": ports["clone"], "targetPort": "clone"} in (
        service["spec"]["ports"])  # _clone._tcp.<service>, at the clone port
    policy = one(docs, "NetworkPolicy", "mysql-backup")["spec"]
    pod_labels = sts["spec"]["template"]["metadata"]["labels"]
    job_labels = cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    [rule] = policy["ingress"]
    assert rule["ports"] == [{"port": "clone", "protocol": "TCP"},
                             {"port": "http", "protocol": "TCP"}]
    [peer] = rule["from"]
    assert peer["podSelector"]["matchLabels"].items() <= job_labels.items()
    assert not peer["podSelector"]["matchLabels"].items() <= pod_labels.items()


def _run_step(container: Doc, data: dict[str, str], replace: dict[str, str],
              files: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The step's command with its rendered environment, the mounted files moved into
    tmp_path (`replace` maps its variables to values for this host)."""
    environment = env_values(container, data)
    for name, value in environment.items():
        if value in files:
            target = tmp_path / Path(value).name
            target.write_text(files[value])
            environment[name] = str(target)
    environment.update(replace)
    mysqlsts = Path(sys.executable).parent / "mysqlsts"
    return subprocess.run(
        [str(mysqlsts), *container["command"][1:]], capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ.get("PATH", ""), **environment})


def test_the_steps_accept_their_rendered_environment(
    cronjob: Doc, docs: list[Doc], tmp_path: Path
) -> None:
    """The real commands with the Job's variables: prune parses the retention settings and
    reads the key files from their variables; backup gets as far as the donor (here a closed
    port on loopback), one line, and writes nothing to the store."""
    data = config_map(docs, cronjob)["data"]
    store = tmp_path / "store"
    store.mkdir()
    key_files = {"/etc/mysqlsts/backup/encryption-key": "k" * 32 + "\n",
                 "/etc/mysqlsts/backup/s3-access-key": "AKIDEXAMPLE\n",
                 "/etc/mysqlsts/backup/s3-secret-key": "secret-example\n",
                 "/etc/mysqlsts/secrets/clone-token": "token\n"}
    by_name = steps(cronjob)

    pruned = _run_step(by_name["prune"], data, {"MYSQLSTS_STORE": f"file://{store}"},
                       key_files, tmp_path)
    assert pruned.returncode == 0, pruned.stderr
    assert "kept=0 deleted=0" in pruned.stdout + pruned.stderr

    token = tmp_path / "clone-token"
    token.write_text("token\n")
    taken = _run_step(by_name["backup"], data, {
        "MYSQLSTS_STORE": f"file://{store}", "MYSQLSTS_DONOR": "127.0.0.1:9",
        "MYSQLSTS_DONOR_DEADLINE": "1", "MYSQLSTS_CLONE_TOKEN_FILE": str(token)},
        key_files, tmp_path)
    assert taken.returncode != 0
    # Log lines while it retries, then the one error line.
    last = taken.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: ") and "127.0.0.1:9" in last, taken.stderr
    assert "Traceback" not in taken.stderr
    assert not any(store.rglob("manifest.json"))

    # The ConfigMap's donor, `auto`, with the pods at loopback addresses (no DNS here) that do
    # not answer: one line naming the replica, and no backup from the primary.
    auto = _run_step(by_name["backup"], data, {
        "MYSQLSTS_STORE": f"file://{store}", "MYSQLSTS_REPLICAS": "2",
        "MYSQLSTS_PEER_HOST_TEMPLATE": "127.0.0.1", "MYSQLSTS_HTTP_PORT": "9",
        "MYSQLSTS_CLONE_TOKEN_FILE": str(token)}, key_files, tmp_path)
    assert auto.returncode != 0
    [line] = auto.stderr.strip().splitlines()
    assert line == ("Error: no donor for a backup: the set of 2 pod(s) has not a ready replica "
                    "(mysql-1: no answer from 127.0.0.1:9/readyz)"), auto.stderr
    assert not any(store.rglob("manifest.json"))


def test_the_drill_runs_after_each_backup_by_default(
    cronjob: Doc, docs: list[Doc], tmp_path: Path
) -> None:
    """MYSQLSTS_VERIFY_AFTER is on in the ConfigMap and the backup step reads it as the flag
    (`true` on, `false` off: the MySQL flavor, which the drill cannot restore, is refused
    before the donor is asked only when it is on); the drill's scratch data goes to a
    writable emptyDir, the step's temp dir, on a read-only root filesystem."""
    data = config_map(docs, cronjob)["data"]
    assert data["MYSQLSTS_VERIFY_AFTER"] == "true"
    backup = steps(cronjob)["backup"]
    # A failed drill's own exit code fails the Job without retries (a backup is not retried
    # into the same failure); the rule names the step that runs the drill.
    [rule] = cronjob["spec"]["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]
    assert rule == {"action": "FailJob", "onExitCodes": {
        "containerName": "backup", "operator": "In", "values": [BackupUnverified.exit_code]}}
    assert BackupUnverified.exit_code not in {MysqlstsError.exit_code, ConfigError.exit_code}
    assert "MYSQLSTS_SCRATCH_DIR" not in env_values(backup, data)  # the system's temp dir
    volumes = {v["name"]: v for v in pod_spec(cronjob)["volumes"]}
    [tmp] = [m for m in backup["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]] and not tmp.get("readOnly")
    store = tmp_path / "store"
    store.mkdir()
    token = tmp_path / "clone-token"
    token.write_text("token\n")
    said = {}
    for verify_after in ("true", "false"):
        done = _run_step(backup, {**data, "MYSQLSTS_VERIFY_AFTER": verify_after}, {
            "MYSQLSTS_STORE": f"file://{store}", "MYSQLSTS_DONOR": "127.0.0.1:9",
            "MYSQLSTS_DONOR_DEADLINE": "1", "MYSQLSTS_CLONE_TOKEN_FILE": str(token),
            "MYSQLSTS_FLAVOR": "mysql", "MYSQLSTS_ENCRYPTION_KEY_FILE": ""}, {}, tmp_path)
        assert done.returncode != 0
        said[verify_after] = done.stderr.strip().splitlines()[-1]
    assert "MariaDB backups only" in said["true"] and "127.0.0.1:9" not in said["true"]
    assert "127.0.0.1:9" in said["false"], said
    assert not any(store.iterdir())


def doc_patches(heading: str) -> list[Doc]:
    """The `patches:` of the yaml block under `### heading` in docs/backup.md."""
    text = (K8S.parent / "docs" / "backup.md").read_text()
    section = text.split(f"### {heading}\n", 1)[1].split("\n### ", 1)[0]
    match = re.search(r"```yaml\n(.*?)\n\s*```", section, re.S)
    assert match, f"no yaml block under {heading}"
    patches: list[Doc] = yaml.safe_load(textwrap.dedent(match.group(1)))["patches"]
    return patches


def render_with(kubectl: str, root: Path, name: str, patches: list[Doc]) -> list[Doc]:
    overlay = root / "overlays" / name
    overlay.mkdir(exist_ok=True)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../backup"], "patches": patches}))
    docs = kustomize(kubectl, overlay)
    for doc in docs:
        if doc["kind"] not in {"PodMonitor", "PrometheusRule"}:
            kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)
    return docs


def test_the_docs_patch_for_ambient_credentials(
    kubectl: str, k8s_copy: tuple[Path, dict[str, str]]
) -> None:
    """docs/backup.md's IRSA / workload identity patch leaves the steps with no S3 key file,
    each still reading exactly what is mounted."""
    root, _ = k8s_copy
    docs = render_with(kubectl, root, "check-backup-ambient",
                       doc_patches("Credentials: EKS and GKE"))
    job = one(docs, "CronJob", "mysql-backup")
    data = config_map(docs, job)["data"]
    for name, container in steps(job).items():
        environment = env_values(container, data)
        assert not [v for v in environment if v.startswith("MYSQLSTS_S3_") and
                    v.endswith("_FILE")], name
        assert environment["MYSQLSTS_ENCRYPTION_KEY_FILE"] == "/etc/mysqlsts/backup/encryption-key"
        files = mounted_secret_files(job, container)
        assert ("mysql-backup", "encryption-key") in files.values(), name
        assert not [f for f in files.values() if f[1].startswith("s3-")], name


def test_the_docs_patch_for_a_restore_from_nothing(
    kubectl: str, k8s_copy: tuple[Path, dict[str, str]]
) -> None:
    """docs/backup.md's patch makes a one-pod set whose clone step restores from the store,
    with variables the clone command has and key files that are mounted."""
    root, _ = k8s_copy
    docs = render_with(kubectl, root, "check-restore", doc_patches(
        "Restoring a whole set from nothing"))
    sts = one(docs, "StatefulSet", "mysql")
    spec = sts["spec"]["template"]["spec"]
    assert sts["spec"]["replicas"] == 1
    sidecar = next(c for c in spec["containers"] if c["name"] == "sidecar")
    assert {"name": "MYSQLSTS_REPLICAS", "value": "1"} in sidecar["env"]
    clone = next(c for c in spec["initContainers"] if c["name"] == "clone")
    assert clone["command"] == ["mysqlsts", "clone"]
    environment = {e["name"]: e.get("value") for e in clone["env"]}
    assert environment["MYSQLSTS_FROM_BACKUP"].startswith("s3://")
    known = {var for p in command_params(clone["command"]) for var in envvars(p)}
    assert set(environment) - {"POD_NAME"} <= known
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounted = {}
    for mount in clone["volumeMounts"]:
        secret = volumes.get(mount["name"], {}).get("secret")  # data: a PVC
        if secret and secret["secretName"] == "mysql-backup":
            mounted[mount["mountPath"]] = secret
    [(path, secret)] = mounted.items()
    for name in ("MYSQLSTS_ENCRYPTION_KEY_FILE", "MYSQLSTS_S3_ACCESS_KEY_FILE",
                 "MYSQLSTS_S3_SECRET_KEY_FILE"):
        directory, _, key = str(environment[name]).rpartition("/")
        assert directory == path and key in BACKUP_SECRET_FILES, name
    assert one(docs, "Secret", "mysql-backup")


def test_make_secrets_creates_the_backup_encryption_key_once(tmp_path: Path) -> None:
    script = str(K8S.parent / "scripts" / "make-secrets")
    done = subprocess.run([script, "--backup", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    key = tmp_path / "encryption-key"
    value = key.read_text()
    assert len(base64.b64decode(value, validate=True)) == 32
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert value not in done.stdout + done.stderr
    again = subprocess.run([script, "--backup", str(tmp_path)], capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0 and key.read_text() == value  # never replaced
    assert not {p.name for p in tmp_path.iterdir()} - {"encryption-key"}
    bad = subprocess.run([script, "--backup", str(tmp_path / "nowhere")], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr


def schedule_interval_seconds(schedule: str) -> int:
    """The interval of the simple cron schedules this component may use: hourly (`M * * * *`),
    every N hours (`M */N * * *`), daily (`M H * * *`)."""
    minute, hour, *rest = schedule.split()
    assert minute.isdigit() and rest == ["*", "*", "*"], f"not a simple schedule: {schedule}"
    if hour == "*":
        return 3600
    if hour.startswith("*/"):
        return int(hour[2:]) * 3600
    assert hour.isdigit(), schedule
    return 86400


def test_the_too_old_alert_is_one_and_a_half_schedules(cronjob: Doc) -> None:
    """MysqlstsBackupTooOld's threshold (k8s/components/monitoring) follows the schedule."""
    assert schedule_interval_seconds("0 */6 * * *") == 21600  # the parser itself
    interval = schedule_interval_seconds(cronjob["spec"]["schedule"])
    rules = yaml.safe_load((K8S / "components" / "monitoring" / "prometheusrule.yaml")
                           .read_text())["spec"]["groups"]
    [rule] = [r for g in rules for r in g["rules"] if r.get("alert") == "MysqlstsBackupTooOld"]
    thresholds = {int(t) for t in re.findall(r"> (\d+)", rule["expr"])}
    assert thresholds == {interval * 3 // 2}, rule["expr"]
    name = cronjob["metadata"]["name"]
    assert f'cronjob="{name}"' in rule["expr"]
    # MysqlstsBackupJobFailed selects the Jobs the CronJob names <cronjob>-<minutes>.
    [failed] = [r for g in rules for r in g["rules"] if r.get("alert") == "MysqlstsBackupJobFailed"]
    assert set(re.findall(r'job_name=~"([^"]+)"', failed["expr"])) == {f"{name}-[0-9]+"}
    job = cronjob["spec"]["jobTemplate"]["spec"]
    assert job["activeDeadlineSeconds"] < interval
