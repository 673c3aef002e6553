"""Real pods on loopback for the probe tests and the probe benchmark: a mariadbd configured by
`mysqlsts init` from the manifests' role cnf, and a `mysqlsts sidecar` subprocess beside it.

Plain helpers (no pytest here) so `bench/probe_bench.py` can use them too. Every process is
started in its own session and stopped by its own pid; nothing is left behind.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from prometheus_client.parser import text_string_to_metric_families

from mysqlsts.core.peers import PeerDirectory
from mysqlsts.local.mariadbd import ServerSpec
from tests.servers import Server, stop_process

REPO = Path(__file__).resolve().parents[2]
ROLE_CNF_DIR = REPO / "k8s" / "base" / "cnf" / "mariadb"
MYSQLSTS = [sys.executable, "-m", "mysqlsts"]
SECRET_NAMES = ("root-password", "replication-password", "backup-password", "clone-token")


def have_mariadb() -> bool:
    return shutil.which("mariadbd") is not None and shutil.which("mariadb-install-db") is not None


def run_mysqlsts(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> None:
    result = subprocess.run(
        [*MYSQLSTS, *args], env={**os.environ, **(env or {})}, capture_output=True,
        timeout=timeout, check=False,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"mysqlsts {args[0]} failed ({result.returncode}): {result.stderr.decode()[-2000:]}"
        )


@dataclass(frozen=True)
class Secrets:
    """The pod Secret as files (0600), as mounted at /etc/mysqlsts/secrets."""

    directory: Path

    @classmethod
    def create(cls, directory: Path) -> Secrets:
        directory.mkdir(parents=True, exist_ok=True)
        for name in SECRET_NAMES:
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(f"{name.split('-')[0]}-{secrets.token_hex(12)}\n")
        return cls(directory)

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def root_password(self) -> str:
        return self.path("root-password").read_text().strip()

    def env(self) -> dict[str, str]:
        return {
            "MYSQLSTS_ROOT_PASSWORD_FILE": str(self.path("root-password")),
            "MYSQLSTS_REPLICATION_PASSWORD_FILE": str(self.path("replication-password")),
            "MYSQLSTS_BACKUP_PASSWORD_FILE": str(self.path("backup-password")),
            "MYSQLSTS_CLONE_TOKEN_FILE": str(self.path("clone-token")),
        }


@dataclass(frozen=True)
class Ports:
    """The set's port plan: ordinal n uses base + n × stride (as MYSQLSTS_PEER_PORT_STRIDE)."""

    mysql: int
    clone: int
    http: int
    stride: int

    def of(self, ordinal: int) -> tuple[int, int, int]:
        address = PeerDirectory("mysql", "mysql", "127.0.0.1", self.mysql, self.clone,
                                self.http, self.stride).address(ordinal)
        return address.mysql_port, address.clone_port, address.http_port

    def env(self) -> dict[str, str]:
        return {
            "MYSQLSTS_MYSQL_PORT": str(self.mysql),
            "MYSQLSTS_CLONE_PORT": str(self.clone),
            "MYSQLSTS_HTTP_PORT": str(self.http),
            "MYSQLSTS_PEER_PORT_STRIDE": str(self.stride),
            "MYSQLSTS_PEER_HOST_TEMPLATE": "127.0.0.1",
            "MYSQLSTS_LOCAL_HOST": "127.0.0.1",
        }


# Tests write little; durability costs only time here. Read after the role cnf (name order).
FAST_CNF = "[mysqld]\nsync_binlog=0\ninnodb_flush_log_at_trx_commit=2\n"


def prepare_pod(
    root: Path, pod: str, port: int, secrets_: Secrets, template: Path, extra_cnf: str = "",
) -> Server:
    """Conf dir by `mysqlsts init` (the manifests' role cnf), data dir copied from `template`."""
    base = root / pod
    conf_dir = base / "conf.d"
    run_mysqlsts("init", "--pod-name", pod, "--config-map-dir", str(ROLE_CNF_DIR),
                 "--conf-dir", str(conf_dir))
    (conf_dir / "zz-tests.cnf").write_text(FAST_CNF + extra_cnf)
    data_dir = base / "data"
    shutil.copytree(template, data_dir)
    spec = ServerSpec(data_dir=data_dir, conf_dir=conf_dir, run_dir=base / "run", port=port)
    return Server(spec=spec, root_password=secrets_.root_password, name=pod)


def bootstrap_template(root: Path, secrets_: Secrets) -> Path:
    """One data dir initialised by `mysqlsts bootstrap`; pods start from copies of it, so a
    replica begins with the primary's (empty) history, as after a clone."""
    data_dir = root / "template"
    run_mysqlsts("bootstrap", "--data-dir", str(data_dir),
                 "--root-password-file", str(secrets_.path("root-password")))
    return data_dir


# -- the sidecar -------------------------------------------------------------------------


@dataclass
class Response:
    status: int
    body: str
    seconds: float


@dataclass
class Sidecar:
    """`mysqlsts sidecar` as a subprocess; its log goes to a file shown when a test fails."""

    pod: str
    http_port: int
    env: dict[str, str]
    args: list[str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started: list[float] = field(default_factory=list)

    def start(self) -> None:
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [*MYSQLSTS, "sidecar", *self.args], env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
        finally:
            log.close()
        self.started.append(time.monotonic())
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.pod}: sidecar exited {self.process.returncode}:\n"
                                     + self.log_tail())
            with contextlib.suppress(OSError):
                self.get("/livez", timeout=1)
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.pod}: sidecar serves no HTTP after 30 s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process, grace=15)

    def get(self, path: str, timeout: float = 5) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        started = time.monotonic()
        try:
            conn.request("GET", path)
            reply = conn.getresponse()
            body = reply.read().decode(errors="replace")
        finally:
            conn.close()
        return Response(reply.status, body, time.monotonic() - started)

    def metrics(self) -> dict[str, float]:
        """Unlabelled samples by name, plus `name{k="v",...}` keys for labelled ones."""
        reply = self.get("/metrics")
        assert reply.status == 200, f"/metrics answered {reply.status}: {reply.body[:200]}"
        return parse_metrics(reply.body)


def parse_metrics(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}"] = sample.value
            else:
                samples[sample.name] = sample.value
    return samples


def wait_until(
    check: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition",
) -> Any:
    """Poll `check` until it returns something truthy; its last value is in the failure."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
        except (OSError, AssertionError, pymysql.MySQLError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached in {timeout:.1f}s; last: {last!r}")
        time.sleep(interval)


@contextlib.contextmanager
def stopped_on_exit(*things: Server | Sidecar) -> Iterator[None]:
    try:
        yield
    finally:
        for thing in things:
            thing.stop()
