"""`mysqlsts takeover` refuses bad input with one line and a non-zero exit, touching nothing."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from mysqlsts.cli import cli


def test_refuses_a_window_shorter_than_the_isolation_fence() -> None:
    result = CliRunner().invoke(
        cli, ["takeover", "--once", "--node-down-after", "200", "--isolation-fence-after", "90"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "--node-down-after 200s is too short" in lines[0] and "(240s)" in lines[0]


def test_the_window_is_read_from_the_environment() -> None:
    result = CliRunner().invoke(cli, ["takeover", "--once"],
                                env={"MYSQLSTS_TAKEOVER_NODE_DOWN_AFTER": "120"})
    assert result.exit_code == 2
    assert "--node-down-after 120s is too short" in result.output


def test_no_cluster_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["takeover", "--once"],
        env={"KUBECONFIG": str(tmp_path / "missing"), "KUBERNETES_SERVICE_HOST": ""})
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: no cluster to talk to"), lines


def test_every_option_has_an_environment_variable() -> None:
    from mysqlsts.takeover.command import fence, takeover

    for command in (takeover, fence):
        for param in command.params:
            if param.param_type_name == "option":
                assert param.envvar, f"{command.name} {param.name} has no env var"


def test_metrics_match_docs_takeover_md() -> None:
    import re

    from mysqlsts.takeover.metrics import TakeoverMetrics

    doc = (Path(__file__).resolve().parents[2] / "docs" / "takeover.md").read_text()
    documented = dict(re.findall(r"^\|\s*`(mysqlsts_takeover_\w+)`\s*\|\s*(\w+)\s*\|", doc, re.M))
    text = TakeoverMetrics().render().decode()
    exported = dict(re.findall(r"^# TYPE (\S+) (\w+)$", text, re.M))  # counters: with _total
    assert documented == exported


def _once_against(tmp_path: Path, port: int, *flags: str) -> subprocess.CompletedProcess[str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "me"}}],
    }))
    return subprocess.run(
        [sys.executable, "-m", "mysqlsts", "takeover", "--once", *flags],
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60,
    )


def test_an_api_server_that_accepts_and_never_answers_is_one_line(tmp_path: Path) -> None:
    """Every request has a deadline (--api-timeout): a server that takes the connection and
    stays silent ends the pass in about that long, not never."""
    with socket.socket() as silent:  # the kernel accepts into the backlog; nothing answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        done = _once_against(tmp_path, silent.getsockname()[1], "--api-timeout", "1")
        took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: the Kubernetes API failed: ") and "timed out" in lines[0]
    assert took < 20, f"took {took:.1f}s"


def test_an_api_server_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    """--once against a kubeconfig whose server refuses connections (a closed loopback port):
    one line on stderr, no traceback, exit 1."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = _once_against(tmp_path, port)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("Error: the Kubernetes API failed: ") and "refused" in lines[0]


def test_refuses_a_renew_deadline_not_shorter_than_the_lease() -> None:
    result = CliRunner().invoke(
        cli, ["takeover", "--once", "--lease-duration", "30", "--renew-deadline", "30"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--renew-deadline 30s must be shorter" in lines[0], lines
