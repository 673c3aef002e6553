"""What the benches share: the machine's description, one percentile, paced load, the donor's
start-up, and the writer of their docs/benchmarks.md sections.

Every bench computes its percentiles here (nearest rank), so p99 means the same in every block
of docs/benchmarks.md; and every block says what the machine was doing (its load average), as
the 2-core machine is shared.
"""

from __future__ import annotations

import math
import os
import platform
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from mysqlsts.bootstrap import bootstrap_data_dir
from mysqlsts.clone.donor import BackupSource, DonorServer
from mysqlsts.core.clone_window import ChunkCounts
from mysqlsts.local.mariadbd import ServerSpec, start_server, wait_until_up
from tests.localset import run_statements

ROOT_PASSWORD = "bench-root"
BACKUP_USER, BACKUP_PASSWORD = "mysqlsts_backup", "bench-backup"
TOKEN = "bench-clone-token"
ROWS_PER_BATCH = 5000

# -- output ------------------------------------------------------------------------------


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def scratch(prefix: str) -> Path:
    """A new scratch directory under MYSQLSTS_BENCH_DIR (default: the system's temp dir)."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("MYSQLSTS_BENCH_DIR")))


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    except OSError:
        return f"{argv[0]}: not installed"
    return ((out.stdout or out.stderr).strip().splitlines() or ["unknown"])[0]


def machine(tools: Sequence[list[str]] = ()) -> list[str]:
    """The machine, one fact a line: CPU, memory, disk, kernel and Python, the server, and the
    first line of each of `tools` (version commands)."""
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    found = re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
    mem_gib = int(found[1]) / 1024**2 if found else 0.0
    disk = subprocess.run(["df", "-h", "--output=source,fstype,size", tempfile.gettempdir()],
                          capture_output=True, text=True).stdout.splitlines()[-1].split()
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores; memory {mem_gib:.0f} GiB",
        f"Disk: {disk[0]} ({disk[1]}, {disk[2]}) for {tempfile.gettempdir()}",
        f"Kernel {platform.release()}; Python {platform.python_version()}",
        f"Server: {_first_line(['mariadbd', '--version'])}",
        *(f"Tool: {_first_line(argv)}" for argv in tools),
    ]


class LoadWatch:
    """The 1-minute load average sampled over a bench's run: other work on this machine shows
    in every figure, so every block says how busy the machine was."""

    def __init__(self) -> None:
        self.samples = [os.getloadavg()[0]]
        self.started = time.monotonic()

    def sample(self) -> None:
        self.samples.append(os.getloadavg()[0])

    def describe(self) -> str:
        self.sample()
        minutes = (time.monotonic() - self.started) / 60
        return (f"Machine load (1-minute load average; {os.cpu_count()} cores shared with other "
                f"work) during the run of {minutes:.1f} min: min {min(self.samples):.1f}, max "
                f"{max(self.samples):.1f}, at the end {self.samples[-1]:.1f}.")


def write_section(path: Path, name: str, heading: str, text: str) -> None:
    """Replace the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` in `path`, or
    append it under `heading` when the file has no such block yet."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    block = f"{begin}\n{text}\n{end}"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in current and end in current:
        current = current[:current.index(begin)] + block + current[current.index(end) + len(end):]
    else:
        current = current.rstrip("\n") + f"\n\n{heading}\n\n" + block + "\n"
    path.write_text(current)


def publish(text: str, *, section: str, heading: str, load: LoadWatch,
            write_docs: Path | None, tools: Sequence[list[str]] = ()) -> None:
    """Print a bench's figures under the machine's description and its load, and (with
    `write_docs`) make them the bench's block of that file."""
    body = "\n".join(["Machine:", "", *(f"- {line}" for line in machine(tools)),
                      f"- {load.describe()}", "", text])
    print(body)
    if write_docs is not None:
        write_section(write_docs, section, heading, body)


# -- statistics and load -----------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank q-th percentile (0 < q <= 100): the smallest value that at least q % of
    the values do not exceed. Of 100 values p99 is the 2nd largest; of 50, the largest."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_ms(values: Sequence[float]) -> str:
    """"p50 / p99 / max ms" of latencies in seconds."""
    return (f"{percentile(values, 50) * 1000:.2f} / {percentile(values, 99) * 1000:.2f} / "
            f"{max(values) * 1000:.2f} ms")


def paced(count: int, rate: float, request: Callable[[], float]) -> list[float]:
    """`count` requests at `rate` per second (open loop: a slow answer does not delay the
    schedule); the latency of each in seconds."""
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        latencies.append(request())
    return latencies


class PointSelects(threading.Thread):
    """Point SELECTs by random primary key at a fixed rate, from a thread, as an application's
    reads; latencies in seconds, kept per `phase` (set it from outside between phases).

        with PointSelects(connect, "SELECT b FROM app.t WHERE id = %s", rows, 200) as reads:
            ...
        reads.latencies["steady"]
    """

    def __init__(self, connect: Callable[[], pymysql.connections.Connection[Any]],
                 statement: str, max_id: int, rate: float, seed: int = 12) -> None:
        super().__init__(daemon=True)
        self._conn = connect()
        self._statement, self._max_id, self._interval = statement, max_id, 1.0 / rate
        self._rng = random.Random(seed)
        self.phase = "steady"
        self.latencies: dict[str, list[float]] = {}
        self.halt = threading.Event()

    def run(self) -> None:
        next_at = time.monotonic()
        try:
            with self._conn.cursor() as cursor:
                while not self.halt.is_set():
                    began = time.monotonic()
                    cursor.execute(self._statement, (self._rng.randint(1, self._max_id),))
                    cursor.fetchall()
                    self.latencies.setdefault(self.phase, []).append(time.monotonic() - began)
                    # A fixed schedule: a slow answer does not lower the offered rate much.
                    next_at += self._interval
                    self.halt.wait(max(0.0, next_at - time.monotonic()))
        finally:
            self._conn.close()

    def all(self) -> list[float]:
        return [value for values in self.latencies.values() for value in values]

    def __enter__(self) -> PointSelects:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.halt.set()
        self.join(60)


# -- the data sets ----------------------------------------------------------------------


@dataclass(frozen=True)
class DataSet:
    """The rows a donor's one table, bench.rows, is filled with: its CREATE TABLE, the INSERT
    of one batch (bench.seq_1_to_N is the sequence engine), and the words the figures name it
    by."""

    name: str
    label: str
    table: str
    insert: str


RANDOM_ROWS = DataSet(
    "random", "random 1000-byte rows (incompressible)",
    "CREATE TABLE bench.rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
    "payload VARBINARY(1024) NOT NULL) ENGINE=InnoDB",
    f"INSERT INTO bench.rows (payload) SELECT RANDOM_BYTES(1000) "
    f"FROM bench.seq_1_to_{ROWS_PER_BATCH}")

# Rows like sysbench's sbtest (k, c of digit groups, pad) plus a date, an amount and a note of
# words from a small vocabulary: what an OLTP table's pages hold.
_GROUP = "LPAD(FLOOR(RAND() * 99999999999), 11, '0')"
_WORD = ("ELT(1 + FLOOR(RAND() * 12), 'customer', 'order', 'shipped', 'pending', 'invoice', "
         "'refund', 'priority', 'standard', 'warehouse', 'north', 'delivered', 'returned')")
REALISTIC_ROWS = DataSet(
    "realistic", "realistic rows (sysbench-like)",
    "CREATE TABLE bench.rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL, "
    "c CHAR(120) NOT NULL, pad CHAR(60) NOT NULL, amount DECIMAL(12,2) NOT NULL, "
    "created DATETIME NOT NULL, status VARCHAR(16) NOT NULL, note VARCHAR(200) NOT NULL, "
    "KEY k (k)) ENGINE=InnoDB",
    "INSERT INTO bench.rows (k, c, pad, amount, created, status, note) SELECT "
    "FLOOR(RAND() * 1000000), "
    f"CONCAT_WS('-', {', '.join([_GROUP] * 10)}), "
    f"CONCAT_WS('-', {', '.join([_GROUP] * 5)}), "
    "ROUND(RAND() * 10000, 2), "
    "'2020-01-01' + INTERVAL FLOOR(RAND() * 157680000) SECOND, "
    f"{_WORD}, CONCAT_WS(' ', {_WORD}, {_WORD}, {_WORD}, {_WORD}, {_WORD}, {_WORD}) "
    f"FROM bench.seq_1_to_{ROWS_PER_BATCH}")
DATA_SETS = {data.name: data for data in (REALISTIC_ROWS, RANDOM_ROWS)}


# -- the donor ---------------------------------------------------------------------------


DONOR_CNF = (
    "[mysqld]\nlog_bin=mysql-bin\nbinlog_format=ROW\nserver_id=100\ngtid_strict_mode=ON\n"
    "log_slave_updates=ON\nsync_binlog=0\ninnodb_flush_log_at_trx_commit=2\n"
    "innodb_buffer_pool_size=256M\n"
)

DonorResult = tuple[str, int, float, ChunkCounts]  # DonorServer's on_done: outcome, bytes, ...


class DonorHost:
    """A donor's mariadbd with `gib` GiB of data in bench.rows, its backup account and the
    secrets files a `mysqlsts clone` and the DonorServer read."""

    # The data set: one table filled batch by batch (bench.seq_1_to_N is the sequence engine).
    TABLE, INSERT = RANDOM_ROWS.table, RANDOM_ROWS.insert

    def __init__(self, root: Path, gib: float, port: int) -> None:
        self.root, self.gib, self.port = root, gib, port
        self.data = root / "donor-data"
        self.secrets = root / "secrets"
        self.server: subprocess.Popen[bytes] | None = None
        self.spec = ServerSpec(data_dir=self.data, conf_dir=root / "conf.d", run_dir=root / "run",
                               port=port)

    def start_server(self) -> None:
        self.spec.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.spec.conf_dir / "bench.cnf").write_text(DONOR_CNF)
        self.server = start_server(self.spec)
        wait_until_up("127.0.0.1", self.port, "root", ROOT_PASSWORD, 60, self.server)

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=120)
        self.server = None

    def connect(self) -> pymysql.connections.Connection[Any]:
        return pymysql.connect(host="127.0.0.1", port=self.port, user="root",
                               password=ROOT_PASSWORD, autocommit=True, read_timeout=600)

    def sql(self, *statements: str) -> list[tuple[Any, ...]]:
        """Run statements on one connection; the rows of the last one."""
        return run_statements(self.connect(), statements)

    def build(self) -> None:
        started = time.monotonic()
        self.setup()
        self.fill(int(self.gib * 1024**3))
        self.purge_binary_logs()
        log(f"data dir built bytes={dir_bytes(self.data)} table_bytes="
            f"{dir_bytes(self.data / 'bench')} seconds={time.monotonic() - started:.0f}")

    def setup(self) -> None:
        """A running server with the backup account, the empty table, and the secrets files."""
        bootstrap_data_dir(self.data, ROOT_PASSWORD)
        self.start_server()
        self.sql(
            f"CREATE USER {BACKUP_USER}@'%' IDENTIFIED BY '{BACKUP_PASSWORD}'",
            f"GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, SLAVE MONITOR ON *.* "
            f"TO {BACKUP_USER}@'%'",
            "CREATE DATABASE bench",
            self.TABLE,
        )
        self.secrets.mkdir()
        (self.secrets / "token").write_text(TOKEN + "\n")
        (self.secrets / "backup-password").write_text(BACKUP_PASSWORD + "\n")
        extra = self.secrets / "backup.cnf"
        extra.write_text(f"[client]\nuser={BACKUP_USER}\npassword={BACKUP_PASSWORD}\n")
        extra.chmod(0o600)

    def fill(self, table_bytes: int) -> None:
        """Insert batches until the table's directory holds `table_bytes` (bounded rounds)."""
        for _ in range(200_000):
            if dir_bytes(self.data / "bench") >= table_bytes:
                break
            self.sql(self.INSERT)

    def max_id(self) -> int:
        return int(self.sql("SELECT MAX(id) FROM bench.rows")[0][0])

    def purge_binary_logs(self) -> None:
        # The binary log holds a second copy of every row; no backup method copies it, so it
        # would only inflate the data dir (and the tar floor). Purge it (MariaDB keeps a file
        # until its binlog checkpoint has passed, hence the retries); tar also excludes it.
        self.sql("FLUSH BINARY LOGS")
        first = sorted(self.data.glob("mysql-bin.[0-9]*"))[0]
        for _ in range(40):
            self.sql("PURGE BINARY LOGS BEFORE NOW() + INTERVAL 1 DAY")
            if not first.exists():
                break
            time.sleep(0.5)

    @contextmanager
    def donor(self, host: str, port: int, parallel: int | None = None,
              **kw: Any) -> Iterator[list[DonorResult]]:
        """A DonorServer streaming this server's backups on host:port for the `with`; the list
        fills with each clone's result (outcome first: "ok")."""
        source = BackupSource("mariadb", "127.0.0.1", self.port, self.data, BACKUP_USER,
                              self.secrets / "backup-password",
                              **({} if parallel is None else {"parallel": parallel}))
        done: list[DonorResult] = []
        server = DonorServer(host, port, TOKEN, source.command_factory(),
                             lambda *result: done.append(result), **kw)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield done
        finally:
            server.shutdown()
            thread.join(30)

    def clone_env(self, target: Path, donor_host: str, donor_port: int,
                  **settings: str) -> dict[str, str]:
        """The environment of a `mysqlsts clone` into `target` as mysql-1, from the donor;
        `settings` are further MYSQLSTS_* variables (e.g. CLONE_PARALLEL="2")."""
        return {**os.environ, "POD_NAME": "mysql-1", "MYSQLSTS_PEER_HOST_TEMPLATE": donor_host,
                "MYSQLSTS_CLONE_PORT": str(donor_port), "MYSQLSTS_SRV_NAME": "",
                "MYSQLSTS_CLONE_TOKEN_FILE": str(self.secrets / "token"),
                "MYSQLSTS_DATA_DIR": str(target), "MYSQLSTS_LOG_LEVEL": "warning",
                **{f"MYSQLSTS_{name}": value for name, value in settings.items()}}
