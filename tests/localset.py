"""Drive a `mysqlsts local` replica set from tests and benches, through the CLI as a user would.

    with PortPool("local").reserved(LOCAL_SET_SPAN) as base_port, \
            LocalSet.started(tmp_path / "set", base_port, replicas=3) as local:
        local.sql(0, "CREATE DATABASE t")
        assert local.status()["pods"][2]["ready"]

Integration tests get sets from the `local_set` fixtures (tests/integration/conftest.py).
Teardown runs `local down --purge` and fails the test if any process of the set survives.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.ports import PortPool

# Ports a set may use from its base port: 5 pods at mysqlsts.local.spec's stride of 10.
LOCAL_SET_SPAN = 50


def run_statements(conn: pymysql.connections.Connection[Any],
                   statements: Sequence[str]) -> list[tuple[Any, ...]]:
    """Run statements in order on `conn`, then close it; the rows of the last one."""
    rows: list[tuple[Any, ...]] = []
    try:
        with conn.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
                rows = list(cursor.fetchall())
    finally:
        conn.close()
    return rows


def mysqlsts_command() -> list[str]:
    beside = Path(sys.executable).parent / "mysqlsts"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("mysqlsts")
    return [found] if found else [sys.executable, "-m", "mysqlsts"]


def processes_mentioning(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process whose argv or environment names `marker`."""
    found = []
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if state != "Z" and (needle in cmdline or needle in environ):
            found.append((int(entry.name), cmdline.replace(b"\0", b" ").decode(errors="replace")))
    return found


@dataclass
class LocalSet:
    directory: Path
    base_port: int
    # Added to the environment of every `mysqlsts local` run, so the supervisor passes it on to
    # every pod (as a StatefulSet's env would).
    env: dict[str, str] = field(default_factory=dict)

    def command_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def run(self, *args: str, timeout: float = 600, check: bool = True,
            ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*mysqlsts_command(), "local", *args], capture_output=True, text=True,
            timeout=timeout, env=self.command_env(),
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"mysqlsts local {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stderr[-3000:]}\n{self.diagnostics()}"
            )
        return done

    def up(self, replicas: int, timeout: float = 600,
           up_args: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--dir", str(self.directory), "--replicas", str(replicas),
                        "--base-port", str(self.base_port), "--timeout", str(timeout),
                        *up_args, timeout=timeout + 60)

    def scale(self, replicas: int, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return self.run("scale", "--dir", str(self.directory), "--replicas", str(replicas),
                        "--timeout", str(timeout), timeout=timeout + 60)

    def scale_in_background(self, replicas: int, timeout: float = 600) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*mysqlsts_command(), "local", "scale", "--dir", str(self.directory),
             "--replicas", str(replicas), "--timeout", str(timeout)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.command_env(),
        )

    def kill(self, ordinal: int) -> None:
        self.run("kill", "--dir", str(self.directory), str(ordinal), timeout=60)

    def down(self, purge: bool = False) -> subprocess.CompletedProcess[str]:
        return self.run("down", "--dir", str(self.directory), *(["--purge"] if purge else []),
                        timeout=400)

    def status(self) -> dict[str, Any]:
        done = self.run("status", "--dir", str(self.directory), "--json", timeout=60)
        loaded: dict[str, Any] = json.loads(done.stdout)
        return loaded

    def pod(self, ordinal: int) -> dict[str, Any]:
        pods: dict[int, dict[str, Any]] = {pod["ordinal"]: pod for pod in self.status()["pods"]}
        return pods[ordinal]

    def wait_ready(self, replicas: int, timeout: float = 300) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            pods: list[dict[str, Any]] = self.status()["pods"]
            if len(pods) == replicas and all(pod["ready"] for pod in pods):
                return pods
            if time.monotonic() > deadline:
                raise AssertionError(f"not {replicas} ready pods in {timeout}s: {pods}")
            time.sleep(0.5)

    # Files of the set.
    def pod_dir(self, ordinal: int) -> Path:
        return self.directory / "pods" / f"mysql-{ordinal}"

    def data_dir(self, ordinal: int) -> Path:
        return self.pod_dir(ordinal) / "data"

    def log(self, ordinal: int, container: str) -> str:
        path = self.pod_dir(ordinal) / "logs" / f"{container}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def runs(self, ordinal: int, container: str) -> list[str]:
        """The log of each run of a container, oldest first."""
        marker = f"--- mysqlsts local: {container} starting at"
        return [marker + part for part in self.log(ordinal, container).split(marker)[1:]]

    @property
    def root_password(self) -> str:
        return (self.directory / "secrets" / "root-password").read_text().strip()

    # SQL on a pod's server.
    def connect(self, ordinal: int) -> pymysql.connections.Connection[Any]:
        pod = self.pod(ordinal)
        return pymysql.connect(
            host=pod["mysql"]["host"], port=pod["mysql"]["port"], user="root",
            password=self.root_password, autocommit=True, connect_timeout=5,
            read_timeout=900, write_timeout=900,
        )

    def sql(self, ordinal: int, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements on one pod; the rows of the last one."""
        return run_statements(self.connect(ordinal), statements)

    def value(self, ordinal: int, statement: str) -> Any:
        rows = self.sql(ordinal, statement)
        return rows[0][0] if rows else None

    def wait_caught_up(self, ordinals: list[int], timeout: float = 300) -> None:
        """Every listed replica has applied everything the primary has logged."""
        position = self.value(0, "SELECT @@gtid_binlog_pos")
        for ordinal in ordinals:
            waited = self.value(ordinal, f"SELECT MASTER_GTID_WAIT('{position}', {timeout})")
            assert waited == 0, f"mysql-{ordinal} did not reach {position} in {timeout}s"

    def processes(self) -> list[tuple[int, str]]:
        return processes_mentioning(str(self.directory))

    def diagnostics(self) -> str:
        parts = []
        for path in sorted(self.directory.glob("supervisor.log")) + sorted(
            self.directory.glob("pods/*/logs/*")
        ):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.relative_to(self.directory)} (tail)\n{text[-1500:]}")
        return "\n".join(parts)

    def keep_logs(self, destination: Path) -> None:
        """Copy the set's logs and state somewhere `down --purge` leaves alone."""
        for pattern in ("*.log", "*.json", "pods/*/logs/*", "pods/*/pod.json",
                        "pods/*/data/mysqlsts-clone.json"):
            for path in self.directory.glob(pattern):
                target = destination / path.relative_to(self.directory)
                target.parent.mkdir(parents=True, exist_ok=True)
                with suppress(OSError):
                    shutil.copy2(path, target)

    @classmethod
    @contextmanager
    def started(cls, directory: Path, base_port: int, replicas: int, timeout: float = 600,
                env: dict[str, str] | None = None,
                up_args: Sequence[str] = ()) -> Iterator[LocalSet]:
        local = cls(directory.absolute(), base_port, dict(env or {}))
        with local.brought_down():
            local.up(replicas, timeout, up_args)
            yield local

    @contextmanager
    def brought_down(self) -> Iterator[None]:
        """At the end: logs kept, `down --purge` if a set was made, no process left over."""
        local = self
        try:
            yield
        finally:
            local.keep_logs(local.directory.parent / f"{local.directory.name}-logs")
            if (local.directory / "spec.json").exists():
                local.run("down", "--dir", str(local.directory), "--purge", timeout=400,
                          check=False)
            leftovers = local.processes()
            for pid, _ in leftovers:  # never leave them to trip a later run
                with suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            assert leftovers == [], f"processes survived `local down`: {leftovers}"


def need_mariadb() -> None:
    if shutil.which("mariadbd") is None or shutil.which("mariabackup") is None:
        pytest.skip("mariadbd and mariabackup are not installed (scripts/setup-host test)")


class LocalSetFactory:
    """Starts `mysqlsts local` sets under `base`, each on its own block of the local share; each
    is brought down (and checked for leftover processes) and its ports released at the end."""

    def __init__(self, base: Path, ports: PortPool, stack: ExitStack) -> None:
        self.base, self.ports, self.stack = base, ports, stack
        self.count = 0

    def __call__(self, replicas: int = 3, env: dict[str, str] | None = None,
                 setup_sql: Sequence[str] = (), up_args: Sequence[str] = ()) -> LocalSet:
        """A set of `replicas` pods, up and ready; `env` reaches every pod (as a StatefulSet's
        env would); `setup_sql` runs on the primary before the set is handed out; `up_args`
        are more `local up` flags (e.g. --store)."""
        need_mariadb()
        base_port = self.stack.enter_context(self.ports.reserved(LOCAL_SET_SPAN))
        self.count += 1
        directory = self.base / f"set{self.count}"
        local = self.stack.enter_context(
            LocalSet.started(directory, base_port, replicas=replicas, env=env, up_args=up_args))
        if setup_sql:
            local.sql(0, *setup_sql)
        return local

    def unstarted(self) -> LocalSet:
        """A set's directory and reserved ports, for a test that runs `local up` itself (and
        brings the set down itself)."""
        need_mariadb()
        self.count += 1
        base_port = self.stack.enter_context(self.ports.reserved(LOCAL_SET_SPAN))
        return LocalSet(self.base / f"set{self.count}", base_port)
