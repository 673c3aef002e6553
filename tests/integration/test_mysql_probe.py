"""The mysql container's ping probe (k8s/base/statefulset.yaml), run against a real server: it
needs no password (none is read, none written to a file) and still tells a live server from a
dead one, because `mariadb-admin ping` exits 0 on "access denied"."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.servers import MakeServer

pytestmark = pytest.mark.integration

STATEFULSET = Path(__file__).resolve().parents[2] / "k8s" / "base" / "statefulset.yaml"


def probe_command() -> list[str]:
    spec = yaml.safe_load(STATEFULSET.read_text())["spec"]["template"]["spec"]
    mysql = next(c for c in spec["containers"] if c["name"] == "mysql")
    command: list[str] = mysql["livenessProbe"]["exec"]["command"]
    assert command == mysql["startupProbe"]["exec"]["command"]
    return command


def ping(port: int) -> int:
    # In the pod the server listens on 3306; here on a test port.
    command = [*probe_command()[:-1], f"--port={port}", "ping"]
    return subprocess.run(command, capture_output=True, timeout=30).returncode


def test_ping_without_a_password_tells_live_from_dead(mariadb: MakeServer) -> None:
    server = mariadb("probe", server_id=100)
    assert ping(server.port) == 0  # "access denied" for the probe's user: alive
    server.stop()
    assert ping(server.port) != 0
