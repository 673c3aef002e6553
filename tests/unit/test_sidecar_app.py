"""The sidecar app with no server behind it: probes answer at once, liveness follows the
injected clock, a down server is `mysqlsts_up 0`. And the command's bad-input paths."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry

from mysqlsts.cli import cli
from mysqlsts.core.identity import identify
from mysqlsts.options import LoopOptions, PrimaryLeaseOptions
from mysqlsts.settings import LocalServer, SecretFiles
from mysqlsts.sidecar.app import SidecarApp
from mysqlsts.sidecar.settings import Endpoint, SidecarSettings
from tests.ports import PortPool


def _closed_port() -> int:
    """A port in our share that nothing listens on."""
    return PortPool("sidecar-unit").one()


def _secrets(tmp_path: Path) -> SecretFiles:
    files = {}
    for name in ("root-password", "replication-password", "backup-password", "clone-token"):
        (tmp_path / name).write_text(f"{name}-value\n")
        files[name] = tmp_path / name
    return SecretFiles(files["root-password"], files["replication-password"],
                       files["backup-password"], files["clone-token"])


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[SidecarApp, FakeClock]]:
    clock = FakeClock(1_700_000_000.0)
    settings = SidecarSettings(
        identity=identify("mysql-1", "mysql", 100),
        local=LocalServer("127.0.0.1", _closed_port()), secrets=_secrets(tmp_path),
        primary=Endpoint("127.0.0.1", 3306), data_dir=tmp_path, listen_address="127.0.0.1",
        http_port=0, clone_port=None,
        # The loop thread's own rounds wait minutes apart (a server that is down backs off from
        # the poll interval): the tests drive cycles themselves against the injected clock,
        # and a round of the thread between two steps of a test would move the loop's tick.
        loop=LoopOptions(liveness_threshold=30, poll_interval=600, max_backoff=600),
        lease=PrimaryLeaseOptions(primary_lease="none"),
    )
    made = SidecarApp(settings, registry=CollectorRegistry(), clock=clock)
    made.start()
    # The thread's first round runs at once: let it end before a test cycles, or its late
    # publication overwrites the test's.
    for _ in range(100):
        if made.state.observation.error != "not observed yet":
            break
        time.sleep(0.05)
    try:
        yield made, clock
    finally:
        made.stop()


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_down_server(app: tuple[SidecarApp, FakeClock]) -> None:
    sidecar, clock = app
    state = sidecar.cycle()
    assert not state.observation.up and "2003" in state.observation.error
    code, body = _get(sidecar.http_port, "/readyz")
    assert code == 503 and body.startswith("server unreachable: (2003)")
    assert body.count("\n") == 1
    code, metrics = _get(sidecar.http_port, "/metrics")
    assert code == 200 and "mysqlsts_up 0.0" in metrics
    assert "mysqlsts_scrape_errors_total" in metrics
    assert _get(sidecar.http_port, "/livez")[0] == 200
    code, status = _get(sidecar.http_port, "/status")
    assert code == 200 and '"up": false' in status and '"role": "replica"' in status
    assert _get(sidecar.http_port, "/nope")[0] == 404


def test_liveness_follows_the_loop_not_the_server(app: tuple[SidecarApp, FakeClock]) -> None:
    sidecar, clock = app
    # The server has never answered for far longer than the threshold: still alive.
    clock.now += 300
    sidecar.cycle()
    assert sidecar.liveness().ok
    assert _get(sidecar.http_port, "/livez")[0] == 200
    # No cycle for longer than the threshold: the loop is stuck.
    clock.now += 31
    verdict = sidecar.liveness()
    assert not verdict.ok and "loop has not run for 31s" in verdict.reason
    assert _get(sidecar.http_port, "/livez")[0] == 503


def test_clone_in_progress_is_not_ready(app: tuple[SidecarApp, FakeClock]) -> None:
    sidecar, _ = app
    (sidecar.settings.data_dir / ".mysqlsts-in-progress").write_text("")
    sidecar.cycle()
    assert sidecar.readiness().reason == "clone in progress"


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        settings = SidecarSettings(
            identity=identify("mysql-0", "mysql", 100), local=LocalServer("127.0.0.1", 1),
            secrets=_secrets(tmp_path), primary=Endpoint("h", 1), data_dir=tmp_path,
            listen_address="127.0.0.1", http_port=busy.getsockname()[1], clone_port=None,
            lease=PrimaryLeaseOptions(primary_lease="none"),
        )
        from mysqlsts.errors import MysqlstsError

        with pytest.raises(MysqlstsError, match="cannot listen"):
            SidecarApp(settings, registry=CollectorRegistry()).start()


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    secrets = _secrets(tmp_path)
    base = ["sidecar", "--pod-name", "mysql-1", "--data-dir", str(tmp_path),
            "--root-password-file", str(secrets.root_password),
            "--replication-password-file", str(secrets.replication_password),
            "--backup-password-file", str(secrets.backup_password),
            "--clone-token-file", str(secrets.clone_token), "--primary-lease", "none"]
    result = CliRunner().invoke(cli, [*base, *args], env={"MYSQLSTS_HTTP_PORT": None})
    return result.exit_code, result.output


def test_missing_password_file_is_one_line(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "--replication-password-file", str(tmp_path / "nope"))
    assert code == 2
    lines = output.strip().splitlines()
    assert lines == [f"Error: cannot read replication password file {tmp_path / 'nope'}: "
                     "No such file or directory"]


def test_bad_pod_name_and_bad_values(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "--pod-name", "mysql")
    assert code == 2 and "does not end in -<ordinal>" in output
    code, output = _run(tmp_path, "--heartbeat-database", "no-dashes;")
    assert code == 2 and len(output.strip().splitlines()) == 1 and "heartbeat database" in output
    code, output = _run(tmp_path, "--max-lag", "0")
    assert code == 2 and "--max-lag" in output


def test_empty_secret_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    code, output = _run(tmp_path, "--clone-token-file", str(empty))
    assert code == 2 and output.strip() == f"Error: clone token file {empty} is empty"
    # Without a donor the token is not needed.
    code, output = _run(tmp_path, "--clone-token-file", str(empty), "--no-donor",
                        "--http-port", "1", "--listen-address", "256.0.0.1")
    assert code != 0 and "clone token" not in output


def test_the_sidecar_imports_no_heavy_modules() -> None:
    import subprocess
    import sys

    # The command as `mysqlsts sidecar` resolves it, then everything the app runs.
    code = ("import sys, click, mysqlsts.cli as c; c.cli.get_command(click.Context(c.cli), "
            "'sidecar'); import mysqlsts.sidecar.app; "
            "print(sorted(m for m in ('kubernetes', 'dns', 'yaml', 'testcontainers', "
            "'mysqlsts.local', 'mysqlsts.clone.receiver', 'mysqlsts.clone.command') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_the_primary_lease_store_is_the_one_the_option_names(tmp_path: Path) -> None:
    """`--primary-lease kubernetes` on the primary: the Lease mysql-primary in the pod's
    namespace; a file path: the file store; a replica builds none."""
    from mysqlsts.adapters.kube_lease_store import NAMESPACE, KubernetesLeaseStore
    from mysqlsts.adapters.lease_store import FileLeaseStore
    from mysqlsts.errors import ConfigError
    from mysqlsts.options import PrimaryLeaseOptions, WatchdogOptions

    heartbeat = tmp_path / "heartbeat"

    def lease_app(pod: str, lease: PrimaryLeaseOptions,
                  watchdog: WatchdogOptions | None = None) -> SidecarApp:
        return SidecarApp(replace(SidecarSettings(
            identity=identify(pod, "mysql", 100), local=LocalServer("127.0.0.1", 1),
            secrets=_secrets(tmp_path), primary=Endpoint("h", 1), data_dir=tmp_path,
            listen_address="127.0.0.1", http_port=0, clone_port=None, lease=lease,
        ), watchdog=watchdog or WatchdogOptions(watchdog_file=str(heartbeat))),
            registry=CollectorRegistry())

    kube = PrimaryLeaseOptions(primary_lease="kubernetes", lease_namespace="db",
                               lease_api_url="https://10.96.0.1:443", lease_renew_deadline=7,
                               lease_holder_uid="u-1")
    worker = lease_app("mysql-0", kube).lease
    assert worker is not None and isinstance(worker.store, KubernetesLeaseStore)
    assert worker.store.describe() == "kubernetes:db/mysql-primary"
    assert worker.store.api_url == "https://10.96.0.1:443"
    # The renew deadline, then the stop bound the server's watchdog states beside the heartbeat
    # (`mysqlsts server` writes it), whatever this sidecar's own watchdog settings say.
    assert worker.self_fence() == 0  # no bound stated (yet): none claimed
    (tmp_path / "heartbeat.bound").write_text("21.5\n")  # a patched mysql container's timeout
    assert worker.self_fence() == 7 + 21.5
    no_watchdog = lease_app("mysql-0", kube, WatchdogOptions(watchdog_file=""))
    assert no_watchdog.lease is not None and no_watchdog.lease.self_fence() == 0  # no bound
    assert lease_app("mysql-1", kube).lease is None
    named = replace(kube, primary_lease="kubernetes:other")
    worker = lease_app("mysql-0", named).lease
    assert worker is not None and worker.store.describe() == "kubernetes:db/other"
    worker = lease_app("mysql-0", PrimaryLeaseOptions(primary_lease=f"file:{tmp_path}/l")).lease
    assert worker is not None and isinstance(worker.store, FileLeaseStore)
    # Not in a pod (no KUBERNETES_SERVICE_HOST): the primary cannot hold it; a replica never
    # reads it.
    outside = PrimaryLeaseOptions(primary_lease="kubernetes", lease_namespace="db",
                                  lease_api_url="")
    with pytest.raises(ConfigError, match="no API server .* set --lease-api-url"):
        lease_app("mysql-0", outside)
    assert lease_app("mysql-1", outside).lease is None
    # No pod uid: a re-created pod would renew the old one's lease at once.
    with pytest.raises(ConfigError, match="needs the pod's uid: set POD_UID"):
        lease_app("mysql-0", replace(kube, lease_holder_uid=""))
    if NAMESPACE.exists():  # the tests run in a pod
        return
    # No POD_NAMESPACE and no service account volume (not in a pod): one line.
    nowhere = PrimaryLeaseOptions(primary_lease="kubernetes", lease_holder_uid="u-1",
                                  lease_api_url="https://10.96.0.1:443")
    with pytest.raises(ConfigError, match="no namespace for the primary lease: set POD_NAMESPACE"):
        lease_app("mysql-0", nowhere)


def test_a_kubernetes_lease_api_url_in_clear_text_is_one_line(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "--primary-lease", "kubernetes", "--lease-api-url",
                        "http://10.96.0.1:80")
    assert code == 2 and output.strip().splitlines() == [
        "Error: lease API URL 'http://10.96.0.1:80' must be https://HOST[:PORT]"]
