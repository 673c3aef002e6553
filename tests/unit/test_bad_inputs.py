"""Bad inputs the commands meet before any server is involved: one line and a non-zero exit,
never a traceback, and nothing written."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry, generate_latest

from mysqlsts.cli import cli
from mysqlsts.core.datadir import CLONE_FAILURES
from mysqlsts.core.identity import identify
from mysqlsts.core.peers import PeerDirectory
from mysqlsts.errors import ConfigError
from mysqlsts.options import PrimaryLeaseOptions
from mysqlsts.settings import LocalServer, SecretFiles
from mysqlsts.sidecar.app import SidecarApp
from mysqlsts.sidecar.settings import Endpoint, SidecarSettings

NAMES = ("root-password", "replication-password", "backup-password", "clone-token")


def _secret_args(tmp_path: Path) -> list[str]:
    args = []
    for name in NAMES:
        (tmp_path / name).write_text(f"{name}-value\n")
        args += [f"--{name}-file", str(tmp_path / name)]
    return args


def _one_line_failure(args: list[str]) -> str:
    result = CliRunner().invoke(cli, args, env={"MYSQLSTS_HTTP_PORT": None})
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("command", ["clone", "sidecar", "bootstrap"])
def test_a_data_dir_that_is_a_file_is_one_line(tmp_path: Path, command: str) -> None:
    data_file = tmp_path / "data"
    data_file.write_text("not a directory\n")
    args = [command, "--data-dir", str(data_file)]
    if command != "bootstrap":
        args += ["--pod-name", "mysql-1", *_secret_args(tmp_path)]
    line = _one_line_failure(args)
    assert line == f"Error: data dir {data_file} is not a directory"
    assert data_file.read_text() == "not a directory\n"


def test_a_port_derived_past_65535_is_one_line(tmp_path: Path) -> None:
    line = _one_line_failure([
        "sidecar", "--pod-name", "mysql-1", "--data-dir", str(tmp_path), "--http-port", "65530",
        "--peer-port-stride", "10", "--primary-lease", "none", *_secret_args(tmp_path),
    ])
    assert line == "Error: http port 65530 + ordinal 1 × stride 10 = 65540 is past 65535"


def test_the_peer_directory_refuses_ports_past_65535() -> None:
    peers = PeerDirectory("mysql", "mysql", "{statefulset}-{ordinal}.{service}", 3306, 3307,
                          65530, 2)
    assert peers.address(2).http_port == 65534
    with pytest.raises(ConfigError, match="http port 65530 \\+ ordinal 3"):
        peers.address(3)


def test_a_clone_failure_counter_that_is_a_directory_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    (tmp_path / CLONE_FAILURES).mkdir()
    secrets = SecretFiles(*(tmp_path / name for name in NAMES))
    settings = SidecarSettings(
        identity=identify("mysql-1", "mysql", 100), local=LocalServer("127.0.0.1", 1),
        secrets=secrets, primary=Endpoint("127.0.0.1", 1), data_dir=tmp_path,
        listen_address="127.0.0.1", http_port=0, clone_port=None,
        lease=PrimaryLeaseOptions(primary_lease="none"),
    )
    registry = CollectorRegistry()
    with caplog.at_level(logging.WARNING):
        SidecarApp(settings, registry=registry)
    assert "mysqlsts_clone_failures_total 0.0" in generate_latest(registry).decode()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ignoring the clone-failure count" in warnings[0]


@pytest.mark.parametrize("args,message", [
    (["--primary-lease", "kubernetes", "--lease-api-url", ""],
     "Error: primary lease 'kubernetes': no API server (KUBERNETES_SERVICE_HOST is unset: not "
     "in a pod?): set --lease-api-url"),
    (["--lease-api-url", ""],  # the default is the Kubernetes Lease: not in a pod, no API
     "Error: primary lease 'kubernetes': no API server (KUBERNETES_SERVICE_HOST is unset: not "
     "in a pod?): set --lease-api-url"),
    (["--primary-lease", "etcd://x"],
     "Error: primary lease 'etcd://x' must be none, kubernetes, kubernetes:NAME or file:PATH"),
    (["--primary-lease", "file:"],
     "Error: primary lease 'file:' must be none, kubernetes, kubernetes:NAME or file:PATH"),
    (["--primary-lease", "none", "--lease-renew-deadline", "20"],
     "Error: primary lease: the renew deadline (20s) must be shorter than the lease duration "
     "(15s)"),
])
def test_a_bad_primary_lease_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    line = _one_line_failure(["sidecar", "--pod-name", "mysql-0", "--data-dir", str(tmp_path),
                              *args, *_secret_args(tmp_path)])
    assert line == message


@pytest.mark.parametrize(("extra", "said"), [
    (["--to-gtid", "0-1-5"], "Error: --to-gtid/--to-time recover from a store: give "
     "--from-backup URL"),
    (["--from-backup", "file:///nowhere", "--to-time", "2026-12-04T10:00:00"],
     "Error: time '2026-12-04T10:00:00' names no zone: add Z (UTC) or an offset"),
    (["--from-backup", "file:///nowhere", "--to-gtid", "0-1-5", "--to-time",
      "2026-12-04T10:00:00Z"], "Error: give --to-gtid or --to-time, not both"),
])
def test_a_bad_recovery_target_for_the_clone_step_is_one_line(
        tmp_path: Path, extra: list[str], said: str) -> None:
    data_dir = tmp_path / "data"
    line = _one_line_failure(["clone", "--pod-name", "mysql-0", "--data-dir", str(data_dir),
                              *_secret_args(tmp_path), *extra])
    assert line == said
    assert not data_dir.exists()


@pytest.mark.parametrize(("extra", "said"), [
    (["--to-gtid", "0-1"], "not a MariaDB GTID"),
    (["--to-gtid", "0-1-2,0-1-3"], "or one per domain"),
    (["--to-time", "yesterday"], "not an ISO-8601 time"),
    (["--to-gtid", "0-1-2", "--backup", "20261204T184553Z-0a1b2c"], "exclude each other"),
])
def test_a_bad_recovery_target_for_backup_restore_is_one_line(
        tmp_path: Path, extra: list[str], said: str) -> None:
    (tmp_path / "store").mkdir()
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(cli, ["backup", "restore", "--store",
                                      f"file://{tmp_path / 'store'}", "--data-dir",
                                      str(data_dir), *extra])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and said in lines[0], result.output
    assert not data_dir.exists()
