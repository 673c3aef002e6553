"""Binlog archive benchmark (issue 18 "Figures"): archive lag (RPO) and replay speed; prints
figures, not a test.

One donor-style mariadbd with --gib GiB of data (bench.harness.DonorHost, the clone bench's
data set) is the primary, and `mysqlsts archive` (its own process, as the sidecar runs it)
archives its binary log into a file:// store under the bench's scratch directory. Once it
archives, a base backup is taken (`mysqlsts backup` from a DonorServer), then:

(b) Replay speed: --clients `mariadb` clients write --transactions transactions at once (each an
    INSERT and an UPDATE of one of 1000 hot rows) as fast as the server takes them; once
    archived, the same transactions are applied to the base backup twice: by the point-in-time
    recovery's own apply (the SQL thread over the segments presented as relay logs, as `backup
    restore --to-gtid` does) and by `mariadb-binlog FILES | mariadb` on the same transactions
    into a scratch server started on the same base with the same options. Both times include
    starting and stopping that scratch server; the pipe's own time is given too.
(a) RPO: then a canary client commits one row every 100 ms (a fixed schedule) for --seconds
    and records each acknowledged commit's GTID and the instant its COMMIT returned; a poller
    reads the store's index (the index records, incrementally, as the purger does) every 50 ms
    and records when the archived position first covers each GTID. The archive lag of a
    commit is that instant minus its acknowledgement (so it includes up to one poll interval).
(c) Recovery of the whole run: the base backup and every transaction after it ((b) and (a)),
    to the last canary's GTID, as `backup restore --to-gtid` runs it, timed step by step.

Run: .venv/bin/python -m bench.archive_bench [--seconds 600] [--transactions 100000]
     [--clients 4] [--gib 1] [--write-docs docs/benchmarks.md]
Loopback ports: 2 of the clone-bench share (tests/ports.py). Everything it creates is removed
at the end.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    ROOT_PASSWORD,
    DonorHost,
    LoadWatch,
    dir_bytes,
    log,
    percentile,
    publish,
    scratch,
)
from mysqlsts.adapters.scratch import scratch_server
from mysqlsts.clone.from_backup import restore_into
from mysqlsts.clone.point_in_time import Recovery, apply, fetch, plan_for
from mysqlsts.clone.relay_files import relay_dir
from mysqlsts.clone.store_options import recovery_target
from mysqlsts.core.binlog_index import archived_position
from mysqlsts.core.gtid import mariadb_same_position, parse_mariadb
from mysqlsts.store.binlog_archive import IndexCache
from mysqlsts.store.filestore import FileStore
from tests.ports import PortPool

HEADING = "## Binlog archive"
TOOLS = [["mariadb-binlog", "--version"]]
CANARY_INTERVAL = 0.1
POLL_INTERVAL = 0.05
HOT_ROWS = 1000
# The options both replays' scratch servers run with: those of the recovery's own apply
# (mysqlsts.clone.point_in_time.apply), binary log and all.
REPLAY_OPTIONS = ("--log-bin=mysql-bin", "--gtid-strict-mode=ON", "--log-slave-updates",
                  "--binlog-format=ROW", "--innodb-flush-log-at-trx-commit=2", "--sync-binlog=0")


def archive_lags(acks: Sequence[tuple[int, float]],
                 seen: Sequence[tuple[float, int]]) -> tuple[list[float], int]:
    """Each acknowledged commit's archive lag: `acks` are (sequence number, instant its commit
    returned), `seen` the index's observations (instant, archived sequence number) in time
    order. The lag is the first observation covering the commit minus its acknowledgement (0
    when the index covered it before the client heard back); (the lags, how many commits no
    observation covers)."""
    instants = [at for at, _ in seen]
    # The archived position never goes back, but take the running maximum to be sure.
    covered: list[int] = []
    for _, seq in seen:
        covered.append(max(seq, covered[-1]) if covered else seq)
    lags, missing = [], 0
    for seq, acked in acks:
        first = bisect.bisect_left(covered, seq)
        if first == len(covered):
            missing += 1
            continue
        lags.append(max(0.0, instants[first] - acked))
    return lags, missing


def seq_of(gtid: str, domain: int = 0) -> int:
    return next((g.seq for g in parse_mariadb(gtid) if g.domain == domain), 0)


class ArchiveBench(DonorHost):
    """The primary, its archiver, and the store it writes."""

    def __init__(self, root: Path, gib: float, ports: PortPool) -> None:
        first = ports.block(2)
        super().__init__(root, gib, port=first)
        self.donor_port = first + 1
        self.store_dir = root / "store"
        self.url = f"file://{self.store_dir}"

    def prepare(self) -> None:
        """The server with its data set (the base backups' bulk), binary logs purged, and the
        bench's own tables."""
        self.build()
        self.store_dir.mkdir()
        (self.secrets / "root-password").write_text(ROOT_PASSWORD + "\n")
        self.sql("CREATE TABLE bench.canary (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                 "at DOUBLE NOT NULL) ENGINE=InnoDB",
                 "CREATE TABLE bench.replay (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                 "client INT NOT NULL, payload VARCHAR(200) NOT NULL) ENGINE=InnoDB",
                 "CREATE TABLE bench.hot (id INT PRIMARY KEY, n BIGINT NOT NULL) ENGINE=InnoDB",
                 f"INSERT INTO bench.hot SELECT seq, 0 FROM bench.seq_1_to_{HOT_ROWS}")

    def position(self) -> str:
        return str(self.sql("SELECT @@global.gtid_binlog_pos")[0][0])

    @contextlib.contextmanager
    def archiver(self) -> Iterator[subprocess.Popen[bytes]]:
        """`mysqlsts archive` into the store for the `with`, as root (its password in a file)."""
        env = {**os.environ, "MYSQLSTS_STORE": self.url,
               "MYSQLSTS_PRIMARY": f"127.0.0.1:{self.port}",
               "MYSQLSTS_REPLICATION_USER": "root",
               "MYSQLSTS_REPLICATION_PASSWORD_FILE": str(self.secrets / "root-password"),
               "MYSQLSTS_START_GTID": "current", "MYSQLSTS_LOG_LEVEL": "warning"}
        process = subprocess.Popen([sys.executable, "-m", "mysqlsts", "archive"], env=env)
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=60)

    def archived(self, index: IndexCache) -> int:
        have = archived_position(index.records())
        return have[0].seq if 0 in have else 0

    def index(self) -> IndexCache:
        return IndexCache(FileStore(self.store_dir), None)

    def wait_archived(self, seq: int, timeout: float = 120.0) -> None:
        index = self.index()
        deadline = time.monotonic() + timeout
        while self.archived(index) < seq:
            if time.monotonic() > deadline:
                raise SystemExit(f"archive_bench: the archive did not reach seq {seq} in "
                                 f"{timeout:.0f}s")
            time.sleep(POLL_INTERVAL)

    # -- (a) the archive's lag -----------------------------------------------------------
    def warm_up(self) -> None:
        """Until the archiver is connected and has written a segment (it starts at the
        primary's position when it connects, so a row written before that is never archived:
        write until one is)."""
        index = self.index()
        deadline = time.monotonic() + 120
        while not self.archived(index):
            if time.monotonic() > deadline:
                raise SystemExit("archive_bench: the archiver wrote nothing in 120s")
            self.sql("INSERT INTO bench.canary (at) VALUES (UNIX_TIMESTAMP(NOW(6)))")
            time.sleep(0.5)
        self.wait_archived(seq_of(self.position()))

    def run_rpo(self, seconds: float, load: LoadWatch) -> tuple[list[float], int, int]:
        """(lags in seconds, commits never seen archived, commits made)."""
        acks: list[tuple[int, float]] = []
        seen: list[tuple[float, int]] = []
        done = threading.Event()

        def poll() -> None:
            index = self.index()
            last = -1
            while True:
                seq = self.archived(index)
                at = time.monotonic()  # the listing has returned: the record existed by now
                if seq != last:
                    seen.append((at, seq))
                    last = seq
                if done.is_set() and (not acks or seq >= acks[-1][0]):
                    return
                time.sleep(POLL_INTERVAL)

        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                started = time.monotonic()
                count = int(seconds / CANARY_INTERVAL)
                for n in range(count):
                    delay = started + n * CANARY_INTERVAL - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    cursor.execute("INSERT INTO bench.canary (at) VALUES (UNIX_TIMESTAMP(NOW(6)))")
                    acked = time.monotonic()
                    cursor.execute("SELECT @@last_gtid")
                    row = cursor.fetchone()
                    assert row is not None
                    acks.append((seq_of(str(row[0])), acked))
                    if n % 600 == 0:
                        load.sample()
        finally:
            conn.close()
            done.set()
        poller.join(120)
        lags, missing = archive_lags(acks, seen)
        return lags, missing, len(acks)

    # -- (b) replay speed ----------------------------------------------------------------
    def take_backup(self) -> str:
        """A base backup into the store; its GTID position."""
        with self.donor("127.0.0.1", self.donor_port) as done:
            taken = subprocess.run(
                [sys.executable, "-m", "mysqlsts", "backup", "--store", self.url, "--donor",
                 f"127.0.0.1:{self.donor_port}", "--clone-token-file",
                 str(self.secrets / "token")],
                capture_output=True, text=True, check=False)
        if taken.returncode != 0 or not done or done[0][0] != "ok":
            raise SystemExit(f"archive_bench: the base backup failed: {taken.stderr.strip()}")
        return taken.stderr.split("gtid=", 1)[1].split()[0]

    def write(self, transactions: int, clients: int) -> float:
        """`transactions` by `clients` `mariadb` clients at once; the seconds it took."""
        defaults = self.secrets / "client.cnf"
        defaults.write_text(f"[client]\nuser=root\npassword={ROOT_PASSWORD}\n")
        rng = random.Random(18)
        scripts = []
        for client in range(clients):
            lines = [
                f"BEGIN; INSERT INTO bench.replay (client, payload) VALUES "
                f"({client}, REPEAT('x', 180)); UPDATE bench.hot SET n = n + 1 WHERE id = "
                f"{rng.randint(1, HOT_ROWS)}; COMMIT;"
                for _ in range(transactions // clients + (client < transactions % clients))]
            scripts.append(("\n".join(lines) + "\n").encode())
        started = time.monotonic()
        writers = [subprocess.Popen(
            ["mariadb", f"--defaults-extra-file={defaults}", "-h", "127.0.0.1", "-P",
             str(self.port), "--protocol=TCP"], stdin=subprocess.PIPE) for _ in scripts]
        feeders = [threading.Thread(target=_feed, args=(writer, script))
                   for writer, script in zip(writers, scripts, strict=True)]
        for feeder in feeders:
            feeder.start()
        for feeder in feeders:
            feeder.join()
        if any(w.wait() != 0 for w in writers):
            raise SystemExit("archive_bench: a writing client failed")
        return time.monotonic() - started


def bench_options(parser: argparse.ArgumentParser, gib: float, gib_help: str) -> None:
    """The options a bench on an ArchiveBench ends with: its data set's size in GiB (`gib` by
    default), and the file to write its figures into."""
    parser.add_argument("--gib", type=float, default=gib, help=gib_help)
    parser.add_argument("--write-docs", type=Path)


@contextlib.contextmanager
def prepared(prefix: str, gib: float) -> Iterator[tuple[ArchiveBench, LoadWatch]]:
    """An ArchiveBench of `gib` GiB in a new scratch directory named `prefix`..., on 2 of the
    clone-bench's loopback ports, prepared, and the machine's load watched from the start; at
    the end its server is stopped and its directory removed, whatever happened."""
    root = scratch(prefix)
    load = LoadWatch()
    bench = ArchiveBench(root, gib, PortPool("clone-bench"))
    try:
        bench.prepare()
        yield bench, load
    finally:
        bench.stop_server()
        shutil.rmtree(root, ignore_errors=True)


def _feed(process: subprocess.Popen[bytes], script: bytes) -> None:
    assert process.stdin is not None
    process.stdin.write(script)
    process.stdin.close()


@dataclass
class Replay:
    transactions: int
    write_seconds: float
    sql_thread_seconds: float
    binlog_seconds: float  # mariadb-binlog | mariadb, with the scratch server's start and stop
    pipe_seconds: float  # the pipe alone


def recover_in_steps(store: FileStore, target: str, data_dir: Path,
                     ) -> tuple[dict[str, float], Recovery]:
    """`backup restore --to-gtid TARGET` into `data_dir` as the command runs it
    (clone.point_in_time.recover_into), each step timed: plan (manifests and index), fetch
    (segments read, cut and written as relay log files), restore (the base backup:
    download, extract, prepare, record, marker) and apply (the SQL thread on a scratch
    server, with its start and stop)."""
    point = recovery_target(target, "")
    assert point is not None
    steps: dict[str, float] = {}
    started = time.monotonic()
    plan, manifest = plan_for(store, None, point)
    steps["plan"] = time.monotonic() - started
    with relay_dir(data_dir) as directory:
        started = time.monotonic()
        recovery = fetch(store, None, plan, manifest, directory)
        steps["fetch"] = time.monotonic() - started

        def timed_apply(staging: Path) -> str:
            began = time.monotonic()
            position = apply(staging, recovery, "256M")
            steps["apply"] = time.monotonic() - began
            return position

        started = time.monotonic()
        restore_into(data_dir, store, manifest, None, advance=timed_apply)
        steps["restore"] = time.monotonic() - started - steps["apply"]
    return steps, recovery


def replay_both(store: FileStore, work: Path, target: str) -> tuple[float, float, float]:
    """Apply the archive through `target` to the base backup before it both ways: (SQL thread
    seconds, mariadb-binlog | mariadb seconds, the pipe's own seconds)."""
    log("replay: the recovery's own apply (SQL thread)")
    steps, recovery = recover_in_steps(store, target, work / "sql-thread")
    shutil.rmtree(work / "sql-thread")

    log("replay: mariadb-binlog | mariadb")
    base = work / "binlog-pipe"
    restore_into(base, store, recovery.manifest, None)
    base_gtid = recovery.plan.base_gtid
    # The same relay log files the recovery applied, written again for the pipe to read.
    pipe_relay = work / "pipe-relay"
    pipe_relay.mkdir()
    files = [str(f) for f in fetch(store, None, recovery.plan, recovery.manifest,
                                   pipe_relay).files]
    # A short private directory for the socket (a socket's path has a 107-byte limit).
    run_dir = Path(tempfile.mkdtemp(prefix="mysqlsts-replay-run-"))
    started = time.monotonic()
    with scratch_server(base, run_dir, "256M", REPLAY_OPTIONS) as conn:
        with conn.cursor() as cursor:
            cursor.execute("RESET MASTER")
            cursor.execute("SET GLOBAL gtid_binlog_state = %s", (base_gtid,))
            cursor.execute("SET GLOBAL gtid_slave_pos = %s", (base_gtid,))
        piped = time.monotonic()
        subprocess.run(
            f"set -o pipefail; mariadb-binlog {' '.join(files)} | mariadb --no-defaults "
            f"--socket={run_dir / 'mysqld.sock'} -u root --max-allowed-packet=1G",
            shell=True, executable="/bin/bash", check=True)
        pipe_seconds = time.monotonic() - piped
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@global.gtid_binlog_pos AS p")
            reached = str(cursor.fetchone()["p"])
    binlog_seconds = time.monotonic() - started
    shutil.rmtree(run_dir, ignore_errors=True)
    shutil.rmtree(base)
    shutil.rmtree(pipe_relay)
    if not mariadb_same_position(reached, recovery.position):
        raise SystemExit(f"archive_bench: mariadb-binlog | mariadb reached {reached}, not "
                         f"{recovery.position}")
    return steps["apply"], binlog_seconds, pipe_seconds


def report(lags: list[float], missing: int, commits: int, seconds: float,
           replay: Replay, whole: dict[str, float], whole_transactions: int,
           base_bytes: int) -> str:
    def rate(seconds: float) -> float:
        return replay.transactions / seconds

    write, sql, pipe = (rate(replay.write_seconds), rate(replay.sql_thread_seconds),
                        rate(replay.binlog_seconds))
    lines = [
        "`bench/archive_bench.py`: `mysqlsts archive` (its own process) archiving a primary's "
        "binary log into a file:// store on the same disk; default segment settings (cut at "
        "1 s or 8 MiB).",
        "",
        f"(a) RPO: a canary commit every {CANARY_INTERVAL * 1000:.0f} ms for {seconds:.0f} s "
        f"({commits} commits); lag = when the index (polled every "
        f"{POLL_INTERVAL * 1000:.0f} ms) first covered the commit's GTID minus when its COMMIT "
        "returned.",
        "",
        "| archive lag p50 | p99 | max | commits never seen archived |",
        "|---|---|---|---|",
        f"| {percentile(lags, 50):.2f} s | {percentile(lags, 99):.2f} s | {max(lags):.2f} s | "
        f"{missing} |",
        "",
        "Targets (issue 18): p99 <= 2 s, max <= 5 s.",
        "",
        f"(b) Replay: {replay.transactions} transactions (INSERT + UPDATE of one of "
        f"{HOT_ROWS} hot rows each) written by concurrent `mariadb` clients, archived, then "
        "applied to the same base backup both ways (each time includes starting and stopping "
        "the scratch server).",
        "",
        "| | seconds | transactions/s |",
        "|---|---|---|",
        f"| written by the clients | {replay.write_seconds:.1f} | {write:.0f} |",
        f"| applied by the SQL thread (the PITR path) | {replay.sql_thread_seconds:.1f} | "
        f"{sql:.0f} |",
        f"| applied by `mariadb-binlog \\| mariadb` | {replay.binlog_seconds:.1f} | "
        f"{pipe:.0f} |",
        f"| of which the pipe alone | {replay.pipe_seconds:.1f} | "
        f"{rate(replay.pipe_seconds):.0f} |",
        "",
        f"Ratios in this run: SQL-thread apply / write = {sql / write:.2f} (target >= 2); "
        f"`mariadb-binlog \\| mariadb` / write = {pipe / write:.2f}; SQL thread / "
        f"`mariadb-binlog \\| mariadb` = {sql / pipe:.2f} (apply rates).",
        "",
        f"(c) Point-in-time recovery of the whole run: the base backup (data dir "
        f"{base_bytes / 1024**3:.2f} GiB, taken before (b)) and the {whole_transactions} "
        f"archived transactions after it ((b) and (a)), to the last canary's GTID, as "
        "`backup restore --to-gtid` runs it: "
        f"{sum(whole.values()):.1f} s in all.",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| {name}: {what} | {whole[name]:.1f} |" for name, what in STEPS),
    ]
    return "\n".join(lines)


STEPS = (("plan", "manifests and index read, window checked"),
         ("fetch", "segments read, checked, cut and written as relay log files"),
         ("restore", "the base backup: download, extract, prepare, record"),
         ("apply", "the SQL thread on a scratch server, with its start and stop"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=600.0,
                        help="length of the RPO run (the issue asks for 10 minutes)")
    parser.add_argument("--transactions", type=int, default=100000)
    parser.add_argument("--clients", type=int, default=4)
    bench_options(parser, float(os.environ.get("MYSQLSTS_BENCH_GIB", "1.0")),
                  "size of the base backup's data set (default: MYSQLSTS_BENCH_GIB, else 1)")
    args = parser.parse_args()
    with prepared("mysqlsts-archive-bench-", args.gib) as (bench, load):
        base_bytes = dir_bytes(bench.data)
        with bench.archiver():
            bench.warm_up()
            bench.take_backup()
            log(f"replay: writing {args.transactions} transactions")
            write_seconds = bench.write(args.transactions, args.clients)
            load.sample()
            burst = bench.position()
            bench.wait_archived(seq_of(burst))
            log(f"RPO: canary for {args.seconds:.0f}s")
            lags, missing, commits = bench.run_rpo(args.seconds, load)
            log(f"RPO: p99 {percentile(lags, 99):.2f}s max {max(lags):.2f}s")
            end = bench.position()
            bench.wait_archived(seq_of(end))
        bench.stop_server()
        store = FileStore(bench.store_dir)
        sql, binlog, pipe = replay_both(store, bench.root, burst)
        replay = Replay(args.transactions, write_seconds, sql, binlog, pipe)
        load.sample()
        log("recovery of the whole run")
        whole, recovery = recover_in_steps(store, end, bench.root / "whole")
        transactions = recovery.transactions
        publish(report(lags, missing, commits, args.seconds, replay, whole, transactions,
                       base_bytes),
                section="archive-bench", heading=HEADING, load=load,
                write_docs=args.write_docs, tools=TOOLS)


if __name__ == "__main__":
    main()
