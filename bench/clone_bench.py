"""Clone benchmark (issue 2 §7): prints figures; not a test.

Builds a data dir of at least MYSQLSTS_BENCH_GIB GiB (default 1.0) under MYSQLSTS_BENCH_DIR
(default: a new directory in /tmp), then clones it over loopback three ways and prints wall
time and MB/s for each:

  (a) `mysqlsts clone` from a DonorServer (authenticated, verified stream, then prepare);
  (b) the Kubernetes example's pipeline: ncat serving `mariabackup --backup --stream=xbstream`,
      `ncat --recv-only | mbstream -x`, then `mariabackup --prepare`;
  (c) the physical floor: `tar` of the stopped data dir through ncat.

Run: .venv/bin/python bench/clone_bench.py [--repeat N] [--write-docs docs/benchmarks.md]
Loopback ports 20800-20899. Everything it creates is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pymysql

from mysqlsts.bootstrap import bootstrap_data_dir
from mysqlsts.clone.donor import BackupSource, DonorServer
from mysqlsts.core.clone_window import ChunkCounts
from mysqlsts.local.mariadbd import ServerSpec, start_server, wait_until_up

SERVER_PORT, DONOR_PORT, NCAT_PORT = 20800, 20801, 20802
ROOT_PASSWORD = "bench-root"
BACKUP_USER, BACKUP_PASSWORD = "mysqlsts_backup", "bench-backup"
TOKEN = "bench-clone-token"
CNF = (
    "[mysqld]\nlog_bin=mysql-bin\nbinlog_format=ROW\nserver_id=100\ngtid_strict_mode=ON\n"
    "log_slave_updates=ON\nsync_binlog=0\ninnodb_flush_log_at_trx_commit=2\n"
    "innodb_buffer_pool_size=256M\n"
)
ROWS_PER_BATCH = 5000


@dataclass
class Result:
    name: str
    seconds: float
    stream_bytes: int  # bytes that crossed the socket

    @property
    def mb_per_s(self) -> float:
        return self.stream_bytes / 1e6 / self.seconds


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Bench:
    # The data set: one table filled batch by batch (bench.seq_1_to_N is the sequence engine).
    TABLE = ("CREATE TABLE bench.rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
             "payload VARBINARY(1024) NOT NULL) ENGINE=InnoDB")
    INSERT = (f"INSERT INTO bench.rows (payload) SELECT RANDOM_BYTES(1000) "
              f"FROM bench.seq_1_to_{ROWS_PER_BATCH}")

    def __init__(self, root: Path, gib: float, port: int = SERVER_PORT) -> None:
        self.root, self.gib, self.port = root, gib, port
        self.data = root / "donor-data"
        self.secrets = root / "secrets"
        self.server: subprocess.Popen[bytes] | None = None
        self.spec = ServerSpec(data_dir=self.data, conf_dir=root / "conf.d", run_dir=root / "run",
                               port=port)

    # -- the donor's server ------------------------------------------------------------
    def start_server(self) -> None:
        self.spec.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.spec.conf_dir / "bench.cnf").write_text(CNF)
        self.server = start_server(self.spec)
        wait_until_up("127.0.0.1", self.port, "root", ROOT_PASSWORD, 60, self.server)

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            self.server.wait(timeout=120)
        self.server = None

    def sql(self, *statements: str) -> None:
        conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root",
                               password=ROOT_PASSWORD, autocommit=True, read_timeout=600)
        try:
            with conn.cursor() as cursor:
                for statement in statements:
                    cursor.execute(statement)
        finally:
            conn.close()

    def build(self) -> None:
        started = time.monotonic()
        self.setup()
        self.fill(int(self.gib * 1024**3))
        self.purge_binary_logs()
        sizes = sorted(((dir_bytes(p) if p.is_dir() else p.stat().st_size, p.name)
                        for p in self.data.iterdir()), reverse=True)[:6]
        log(f"largest data dir entries {sizes}")
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

    # -- (a) mysqlsts clone --------------------------------------------------------------
    def run_mysqlsts(self, backup_parallel: int, extract_parallel: int) -> Result:
        source = BackupSource("mariadb", "127.0.0.1", SERVER_PORT, self.data, BACKUP_USER,
                              self.secrets / "backup-password", parallel=backup_parallel)
        done: list[tuple[str, int, float, ChunkCounts]] = []
        donor = DonorServer("127.0.0.1", DONOR_PORT, TOKEN, source.command_factory(),
                            lambda *r: done.append(r))
        thread = threading.Thread(target=donor.serve_forever, daemon=True)
        thread.start()
        target = self.root / "clone-a"
        env = {**os.environ, "POD_NAME": "mysql-1", "MYSQLSTS_PEER_HOST_TEMPLATE": "127.0.0.1",
               "MYSQLSTS_CLONE_PORT": str(DONOR_PORT), "MYSQLSTS_SRV_NAME": "",
               "MYSQLSTS_CLONE_TOKEN_FILE": str(self.secrets / "token"),
               "MYSQLSTS_DATA_DIR": str(target), "MYSQLSTS_CLONE_PARALLEL": str(extract_parallel),
               "MYSQLSTS_LOG_LEVEL": "warning"}
        try:
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", "mysqlsts", "clone"], env=env, check=True)
            seconds = time.monotonic() - started
        finally:
            donor.shutdown()
            thread.join(30)
        assert done and done[0][0] == "ok", done
        shutil.rmtree(target)
        return Result(f"(a) mysqlsts clone, backup --parallel={backup_parallel}, "
                      f"mbstream --parallel={extract_parallel}", seconds, done[0][1])

    # -- (b) the Kubernetes example ------------------------------------------------------
    def run_example(self) -> Result:
        target = self.root / "clone-b"
        target.mkdir()
        backup = (f"mariabackup --defaults-extra-file={self.secrets / 'backup.cnf'} --backup "
                  f"--slave-info --stream=xbstream --host=127.0.0.1 --port={SERVER_PORT} "
                  f"--target-dir={self.root / 'example-tmp'} --datadir={self.data}")
        server = subprocess.Popen(
            ["ncat", "--listen", "--keep-open", "--send-only", "--max-conns=1",
             "127.0.0.1", str(NCAT_PORT), "-c", f"{backup} 2>/dev/null"],
            start_new_session=True)
        try:
            time.sleep(0.5)
            started = time.monotonic()
            # As the example: no pipefail, exactly its two steps.
            subprocess.run(
                f"ncat --recv-only 127.0.0.1 {NCAT_PORT} | mbstream -x -C {target}",
                shell=True, check=True)
            stream_bytes = dir_bytes(target)
            subprocess.run(["mariabackup", "--prepare", f"--target-dir={target}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            seconds = time.monotonic() - started
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
        shutil.rmtree(target)
        return Result("(b) k8s example: ncat + mbstream, then prepare", seconds, stream_bytes)

    # -- (c) tar of the stopped data dir ---------------------------------------------------
    def run_tar(self) -> Result:
        target = self.root / "clone-c"
        target.mkdir()
        server = subprocess.Popen(
            ["ncat", "--listen", "--send-only", "--max-conns=1", "127.0.0.1", str(NCAT_PORT),
             "-c", f"tar -C {self.data} --exclude=./mysql-bin.* -cf - ."], start_new_session=True,
            stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            started = time.monotonic()
            subprocess.run(
                f"set -o pipefail; ncat --recv-only 127.0.0.1 {NCAT_PORT} | tar -xf - -C {target}",
                shell=True, executable="/bin/bash", check=True)
            seconds = time.monotonic() - started
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait()
        stream_bytes = dir_bytes(target)
        shutil.rmtree(target)
        return Result("(c) tar of the stopped data dir through ncat", seconds, stream_bytes)


def best(runs: list[Result]) -> Result:
    return min(runs, key=lambda r: r.seconds)


def repeat(times: int, run: Callable[[], Result]) -> list[Result]:
    results = []
    for _ in range(times):
        os.sync()  # earlier runs' dirty pages must not be written back during this one
        results.append(run())
        log(f"{results[-1].name}: {results[-1].seconds:.2f}s {results[-1].mb_per_s:.0f} MB/s")
    return results


def machine() -> list[str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])  # type: ignore[index]
    disk = subprocess.run(["df", "-h", "--output=source,fstype,size", "/tmp"],
                          capture_output=True, text=True).stdout.splitlines()[-1].split()
    version = subprocess.run(["mariabackup", "--version"], capture_output=True,
                             text=True).stderr.strip().splitlines()[-1]
    ncat = subprocess.run(["ncat", "--version"], capture_output=True,
                          text=True).stderr.strip().splitlines()[0]
    return [
        f"CPU: {cpu}, {os.cpu_count()} cores",
        f"Memory: {mem_kb / 1024**2:.0f} GiB",
        f"Disk: {disk[0]} ({disk[1]}, {disk[2]}) for /tmp",
        f"Kernel: {platform.release()}; Python {platform.python_version()}",
        f"Tools: {version}; {ncat}",
    ]


def report(rows: list[tuple[Result, list[Result]]], data_bytes: int, ratios: list[str]) -> str:
    lines = [
        f"Data dir: {data_bytes / 1024**3:.2f} GiB ({data_bytes} bytes), nearly all one InnoDB "
        "table of random 1000-byte rows; binary logs purged; loopback; page cache warm (the "
        "donor's data fits in memory). Wall time of (a) and (b) includes `--prepare`.",
        "",
        "| method | best wall time | median | MB/s (stream bytes / best) | runs (s) |",
        "|---|---|---|---|---|",
    ]
    for top, runs in rows:
        median = statistics.median(r.seconds for r in runs)
        lines.append(f"| {top.name} | {top.seconds:.2f} s | {median:.2f} s | {top.mb_per_s:.0f} | "
                     f"{', '.join(f'{r.seconds:.2f}' for r in runs)} |")
    return "\n".join([*lines, "", *ratios])


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--write-docs", type=Path)
    args = parser.parse_args()
    gib = float(os.environ.get("MYSQLSTS_BENCH_GIB", "1.0"))
    parent = os.environ.get("MYSQLSTS_BENCH_DIR")
    root = Path(tempfile.mkdtemp(prefix="mysqlsts-bench-", dir=parent))
    bench = Bench(root, gib)
    try:
        bench.build()
        data_bytes = dir_bytes(bench.data)
        rows = []
        for backup_parallel, extract_parallel in ((1, 1), (2, 2), (4, 2)):
            runs = repeat(args.repeat, lambda b=backup_parallel, e=extract_parallel:
                          bench.run_mysqlsts(b, e))
            rows.append((best(runs), runs))
        example = repeat(args.repeat, bench.run_example)
        rows.append((best(example), example))
        bench.stop_server()
        tar = repeat(args.repeat, bench.run_tar)
        rows.append((best(tar), tar))
        a_row = min(rows[:3], key=lambda row: statistics.median(r.seconds for r in row[1]))
        a, a_median = a_row[0], statistics.median(r.seconds for r in a_row[1])
        b, c = best(example), best(tar)
        b_median = statistics.median(r.seconds for r in example)
        c_median = statistics.median(r.seconds for r in tar)
        ratios = [
            f"(a) below is `{a.name}` (the best median).",
            f"- a/b = {a.seconds / b.seconds:.2f} best-to-best, {a_median / b_median:.2f} "
            "median-to-median (target <= 1.1)",
            f"- a/c = {a.seconds / c.seconds:.2f} best-to-best, {a_median / c_median:.2f} "
            "median-to-median (target <= 1.5)",
        ]
        text = report(rows, data_bytes, ratios)
        print("\n".join(machine()) + "\n\n" + text)
        if args.write_docs:
            write_section(args.write_docs, "clone-bench", "## Clone", "Machine:\n\n" + "\n".join(
                f"- {line}" for line in machine()) + "\n\n" + text)
    finally:
        bench.stop_server()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
