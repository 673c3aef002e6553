"""How the clone's cost grows (issue 12 §3): prints figures; not a test.

Real MariaDB servers on this machine, over loopback: this measures how the clone's cost grows
with the data, not how fast a link is (bench/link_bench.py does that). Four parts:

  sizes   Clone wall time vs data dir size (--sizes GiB, default 1,2,4): one donor, grown
          between clones, binary logs purged before each.
  tables  Clone wall time vs number of tables at the same data dir size (--tables, default
          1,1000,10000,50000; --tables-gib, default the whole GiB above what the largest count
          takes before any row): a fresh donor per count, holding N-1 tables of one row each
          (the smallest .ibd InnoDB makes, 64 KiB at the default 16 KiB page, plus a .frm) in
          schemas of 1 000 tables, and one table holding the rest of the bytes. Creating the
          tables is timed apart and counted in no clone. mariabackup holds one descriptor per
          tablespace: a count above the hard open-files limit (less 1 000) is lowered to fit,
          and the output says so.
  steps   For every clone of both parts, each step's seconds from its own log (`clone step done
          step=NAME seconds=S`: donor, stream, prepare, record, sync, move, marker; "other" is the
          process's start and exit), the backup tools' peak open descriptors, and a check per
          step that its time grows no faster than the number of files (tables) or bytes (sizes).
  scale   `mysqlsts local scale` from one pod to two, to the new pod's /readyz 200, against
          that clone's own time (its log's closing sentence), with where the time goes; the
          primary holds --scale-gib GiB (default: the smallest of --sizes). Target: ready <=
          1.3 x clone + 5 s.

Everything runs with the soft open-files limit a container gets (--nofile-soft, 1024) under
this machine's hard limit. Every option has an environment variable, so a quick run is e.g.
  MYSQLSTS_BENCH_SIZES=0.1,0.2,0.4 MYSQLSTS_BENCH_TABLES=1,100,1000,2000 \
  MYSQLSTS_BENCH_TABLES_GIB=0.5 .venv/bin/python -m bench.scale_bench --repeat 1

Run: .venv/bin/python -m bench.scale_bench [--parts sizes,tables,scale] [--repeat N]
     [--write-docs docs/benchmarks.md]
Loopback ports from the scale-bench share (tests/ports.py). MYSQLSTS_BENCH_DIR picks the scratch
parent; every data dir and process the bench creates is removed at exit, also on an error,
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import pymysql
from pymysql.constants import CLIENT

from bench.harness import ROOT_PASSWORD, DonorHost, LoadWatch, dir_bytes, log, publish, scratch
from mysqlsts.adapters.readyz import probe_readiness
from mysqlsts.local.records import Phase
from mysqlsts.local.spec import SetLayout
from mysqlsts.local.store import read_pod_record
from tests.localset import LOCAL_SET_SPAN, LocalSet, processes_mentioning
from tests.ports import PortPool


@dataclass(frozen=True)
class Ports:
    server: int  # the donor's mariadbd
    donor: int  # its DonorServer
    clone_http: int  # the receiving `mysqlsts clone`'s http port
    set_base: int  # the local set's (two pods, stride 10)


@functools.cache
def ports() -> Ports:
    """Reserved once per run, on first use (not on import: the unit tests import this)."""
    pool = PortPool("scale-bench")
    return Ports(pool.one(), pool.one(), pool.one(), pool.block(LOCAL_SET_SPAN))

GIB = 1024**3
MIB = 1024**2
TABLES_PER_SCHEMA = 1000
CREATE_BATCH = 200  # CREATE TABLE + INSERT pairs per round trip
CREATORS = 2  # connections creating tables at once: the server's DDL is CPU-bound, 2 cores
SMALL_TABLE_BYTES = 64 * 1024 + 4096  # the smallest .ibd, and the .frm's block
STEPS = ("donor", "stream", "prepare", "record", "sync", "move", "marker")
# A step is flagged when its time grows by more than the files (or bytes) did, times this:
# runs on this shared 2-core machine vary by +-30 %.
TOLERANCE = 1.5
# Times below this count as this in a ratio: shorter ones are the timer's and scheduler's noise.
FLOOR_SECONDS = 0.2
READY_FACTOR, READY_SLACK = 1.3, 5.0
FD_MARGIN = 1000  # descriptors a backup tool holds besides its tablespaces, and to spare
STEP_LINE = re.compile(r"clone step done step=(\w+) seconds=(\d+\.\d+)")
CLONE_DONE = re.compile(r"clone complete: \S+ from \S+ in (\d+\.\d+)s")
HEADING = "## How the clone's cost grows"
# What each phase the new pod records means, in the timeline of `local scale`.
EVENTS = {Phase.INIT: "init container started", Phase.CLONE: "clone container started",
          Phase.STARTING: "clone container done, server starting",
          Phase.RUNNING: "sidecar started"}


def option_list(text: str, kind: Callable[[str], float]) -> list[float]:
    return sorted(kind(part) for part in text.split(",") if part.strip())


def footprint(data: Path) -> tuple[int, int]:
    """(bytes, files) of a data dir, binary logs left out: no backup copies them."""
    total = files = 0
    for path in data.rglob("*"):
        if path.is_file() and not path.name.startswith("mysql-bin."):
            total += path.stat().st_size
            files += 1
    return total, files


# -- one clone, timed by the bench and by its own steps --------------------------------------


@dataclass
class CloneRun:
    label: str
    data_bytes: int
    files: int
    wall: float  # the `mysqlsts clone` process, start to exit
    steps: dict[str, float]
    stream_bytes: int  # the backup stream, as the donor counted it (before compression)
    load: float  # 1-minute load average when the clone started
    open_files: str  # peak descriptors held: backup / extract / prepare

    @property
    def other(self) -> float:
        return self.wall - sum(self.steps.values())

    def step(self, name: str) -> float:
        return self.other if name == "other" else self.steps[name]


class OpenFiles:
    """The most descriptors each backup tool of one clone held at once, sampled from /proc
    every 0.2 s: the tools whose command line names `root` (the donor's --datadir, the
    receiver's staging dir), by role: backup, extract (mbstream), prepare."""

    def __init__(self, root: Path) -> None:
        self._root = str(root).encode()
        self.peak = {"backup": 0, "extract": 0, "prepare": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _role(self, argv: list[bytes]) -> str | None:
        name = os.path.basename(argv[0])
        if name == b"mbstream":
            return "extract"
        if name == b"mariabackup":
            return "backup" if b"--backup" in argv else "prepare" if b"--prepare" in argv else None
        return None

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            for entry in Path("/proc").iterdir():
                try:
                    cmdline = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
                    role = self._role(cmdline.split(b"\0")) if self._root in cmdline else None
                    if role is not None:
                        count = len(os.listdir(entry / "fd"))
                        self.peak[role] = max(self.peak[role], count)
                except OSError:  # it ended meanwhile
                    continue

    def __enter__(self) -> OpenFiles:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def __str__(self) -> str:
        return " / ".join(str(self.peak[role]) for role in ("backup", "extract", "prepare"))


def parse_steps(log_text: str) -> dict[str, float]:
    steps = {name: float(seconds) for name, seconds in STEP_LINE.findall(log_text)}
    missing = [name for name in STEPS if name not in steps]
    if missing:
        raise SystemExit(f"scale_bench: the clone's log has no step line for {missing}")
    return steps


def clone(bench: DonorHost, label: str) -> CloneRun:
    """`mysqlsts clone` of `bench`'s server as mysql-1 would, product defaults throughout."""
    data_bytes, files = footprint(bench.data)
    target = bench.root / "clone"
    env = bench.clone_env(target, "127.0.0.1", ports().donor, HTTP_PORT=str(ports().clone_http),
                          LISTEN_ADDRESS="127.0.0.1", LOG_LEVEL="info")
    try:
        with bench.donor("127.0.0.1", ports().donor) as done:
            os.sync()  # the build's dirty pages must not be written back during the clone
            load = os.getloadavg()[0]
            started = time.monotonic()
            with OpenFiles(bench.root) as open_files:
                finished = subprocess.run([sys.executable, "-m", "mysqlsts", "clone"], env=env,
                                          capture_output=True, text=True)
            wall = time.monotonic() - started
    finally:
        shutil.rmtree(target, ignore_errors=True)
    if finished.returncode != 0 or not done or done[0][0] != "ok":
        raise SystemExit(f"scale_bench: the clone failed ({done}):\n{finished.stderr[-3000:]}")
    run = CloneRun(label, data_bytes, files, wall, parse_steps(finished.stderr), done[0][1],
                   load, str(open_files))
    log(f"clone of {label}: {wall:.2f}s files={files} data={data_bytes} fds={open_files} "
        + " ".join(f"{name}={seconds:.2f}" for name, seconds in run.steps.items()))
    return run


def best_of(times: int, bench: DonorHost, label: str) -> CloneRun:
    return min((clone(bench, label) for _ in range(times)), key=lambda r: r.wall)


# -- the data sets ----------------------------------------------------------------------------


def size_axis(sizes: Sequence[float], repeat: int) -> list[CloneRun]:
    """One donor grown to each size in turn (the sizes ascend), cloned at each."""
    root = scratch("mysqlsts-scale-sizes-")
    bench = DonorHost(root, 0, port=ports().server)
    try:
        bench.setup()
        runs = []
        for gib in sizes:
            started = time.monotonic()
            fill_data_dir_to(bench, int(gib * GIB))
            log(f"donor grown to {gib:g} GiB in {time.monotonic() - started:.0f}s")
            runs.append(best_of(repeat, bench, f"{gib:g} GiB"))
        return runs
    finally:
        bench.stop_server()
        shutil.rmtree(root, ignore_errors=True)


def fill_data_dir_to(bench: DonorHost, total_bytes: int) -> None:
    """Grow bench.rows until the data dir (binary logs left out) holds `total_bytes`."""
    others = footprint(bench.data)[0] - dir_bytes(bench.data / "bench")
    bench.fill(total_bytes - others)
    bench.purge_binary_logs()


def create_small_tables(port: int, count: int) -> None:
    """`count` tables of one 1000-byte row, in schemas of TABLES_PER_SCHEMA, over CREATORS
    connections, each sending CREATE_BATCH tables per round trip."""
    names = [(f"bench_t{i // TABLES_PER_SCHEMA:03d}", f"t{i % TABLES_PER_SCHEMA:04d}")
             for i in range(count)]
    schemas = sorted({schema for schema, _ in names})
    batches = [[f"CREATE DATABASE {schema}" for schema in schemas]] if schemas else []
    for first in range(0, count, CREATE_BATCH):
        batches.append([
            f"CREATE TABLE {schema}.{table} (id INT PRIMARY KEY, payload VARBINARY(1024) "
            f"NOT NULL) ENGINE=InnoDB; INSERT INTO {schema}.{table} VALUES (1, RANDOM_BYTES(1000))"
            for schema, table in names[first:first + CREATE_BATCH]])

    def creator(share: list[list[str]]) -> None:
        conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password=ROOT_PASSWORD,
                               autocommit=True, read_timeout=600,
                               client_flag=CLIENT.MULTI_STATEMENTS)
        try:
            with conn.cursor() as cursor:
                for batch in share:
                    cursor.execute(";".join(batch))
                    while cursor.nextset():
                        pass
        finally:
            conn.close()

    if batches:
        creator(batches[:1])  # the schemas first, then the tables from every connection
    with ThreadPoolExecutor(CREATORS) as pool:
        for future in [pool.submit(creator, batches[1 + n::CREATORS]) for n in range(CREATORS)]:
            future.result()


class TablesDonor(DonorHost):
    """A donor of `tables` tables whose data dir holds `total_bytes`: N-1 of one row each and
    bench.rows (DonorHost's own table) holding the rest."""

    def build_tables(self, tables: int, total_bytes: int) -> float:
        """Build it; the seconds spent creating the small tables (counted in no clone)."""
        self.setup()
        started = time.monotonic()
        create_small_tables(self.port, tables - 1)
        created = time.monotonic() - started
        others = footprint(self.data)[0] - dir_bytes(self.data / "bench")
        if total_bytes - others < 16 * MIB:
            raise SystemExit(f"scale_bench: {tables} tables take {others / GIB:.2f} GiB before "
                             f"any data; raise --tables-gib above {total_bytes / GIB:g}")
        fill_data_dir_to(self, total_bytes)
        log(f"donor of {tables} tables built: creating them took {created:.0f}s, then "
            f"bench.rows in {time.monotonic() - started - created:.0f}s")
        return created


def tables_axis(counts: Sequence[int], gib: float, repeat: int,
                ) -> tuple[list[CloneRun], dict[int, float]]:
    runs, creation = [], {}
    for count in counts:
        root = scratch(f"mysqlsts-scale-{count}-tables-")
        bench = TablesDonor(root, 0, port=ports().server)
        try:
            creation[count] = bench.build_tables(count, int(gib * GIB))
            runs.append(best_of(repeat, bench, f"{count} table" + "s" * (count != 1)))
        finally:
            bench.stop_server()
            shutil.rmtree(root, ignore_errors=True)
    return runs, creation


def smallest_total(counts: Sequence[int]) -> float:
    """GiB the largest count needs before any row: its small tables plus a fresh data dir's
    ~120 MiB (system tablespace, redo log, the system schema) and room for the big table."""
    return ((max(counts) - 1) * SMALL_TABLE_BYTES + 256 * MIB) / GIB


# -- local scale to ready ---------------------------------------------------------------------


@dataclass
class ScaleRun:
    data_bytes: int
    ready: float  # seconds from `local scale` to the new pod's /readyz 200
    returned: float  # ... to `local scale` exiting
    clone_seconds: float  # the clone's own, from its log's closing sentence
    clone_steps: dict[str, float]
    # Seconds after `local scale` started at which each thing was first seen.
    timeline: dict[str, float] = field(default_factory=dict)

    @property
    def target(self) -> float:
        return READY_FACTOR * self.clone_seconds + READY_SLACK


def accepting(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def scale_to_ready(gib: float) -> ScaleRun:
    root = scratch("mysqlsts-scale-set-")
    local = LocalSet(root / "set", ports().set_base)
    try:
        local.up(1)
        local.sql(0, "CREATE DATABASE bench", DonorHost.TABLE)
        started = time.monotonic()
        while footprint(local.data_dir(0))[0] < gib * GIB:
            local.sql(0, DonorHost.INSERT)
        data_bytes = footprint(local.data_dir(0))[0]
        log(f"primary holds {data_bytes / GIB:.2f} GiB (filled in "
            f"{time.monotonic() - started:.0f}s); scaling to 2")
        os.sync()
        return _watch_scale(local, data_bytes)
    finally:
        if (local.directory / "spec.json").exists():
            local.run("down", "--dir", str(local.directory), "--purge", timeout=400,
                      check=False)
        for pid, _ in processes_mentioning(str(local.directory)):
            os.kill(pid, signal.SIGKILL)  # only this bench's set: its directory is unique
        shutil.rmtree(root, ignore_errors=True)


def _watch_scale(local: LocalSet, data_bytes: int) -> ScaleRun:
    """Start `local scale --replicas 2` and watch mysql-1 until its /readyz answers 200: its
    pod record's phases (each stamped by the pod), its server's port, its /readyz."""
    paths = SetLayout(local.directory).pod("mysql-1")
    mysql_port, http_port = ports().set_base + 10, ports().set_base + 12
    wall_start, started = time.time(), time.monotonic()
    scale = local.scale_in_background(2)
    timeline: dict[str, float] = {}
    try:
        while "/readyz 200" not in timeline:
            if time.monotonic() - started > 3600 or scale.poll() not in (None, 0):
                raise SystemExit(f"scale_bench: mysql-1 not ready: {local.diagnostics()}")
            record = read_pod_record(paths)
            if record is not None:
                timeline.setdefault("pod process started", record.started_at - wall_start)
                if record.phase in EVENTS:
                    timeline.setdefault(EVENTS[record.phase], record.updated_at - wall_start)
            if EVENTS[Phase.STARTING] in timeline and "server accepts connections" not in timeline \
                    and accepting(mysql_port):
                timeline["server accepts connections"] = time.monotonic() - started
            if probe_readiness("127.0.0.1", http_port, timeout=1).ready:
                timeline["/readyz 200"] = time.monotonic() - started
            time.sleep(0.05)
        scale.communicate(timeout=600)
        timeline["`local scale` returned"] = time.monotonic() - started
    finally:
        if scale.poll() is None:
            scale.kill()
            scale.wait()
    clone_log = local.runs(1, "clone")[-1]
    done = CLONE_DONE.search(clone_log)
    if done is None:
        raise SystemExit(f"scale_bench: no closing sentence in mysql-1's clone log:\n"
                         f"{clone_log[-2000:]}")
    return ScaleRun(data_bytes, timeline["/readyz 200"], timeline["`local scale` returned"],
                    float(done[1]), parse_steps(clone_log), dict(sorted(
                        timeline.items(), key=lambda item: item[1])))


# -- the report -------------------------------------------------------------------------------


def ratio(after: float, before: float) -> float:
    return max(after, FLOOR_SECONDS) / max(before, FLOOR_SECONDS)


def steps_table(runs: list[CloneRun], first: str) -> list[str]:
    lines = [f"| {first} | files | wall | " + " | ".join(STEPS) + " | other | load | "
             "peak open files: backup / extract / prepare |",
             "|---" * (len(STEPS) + 6) + "|"]
    for run in runs:
        lines.append(f"| {run.label} | {run.files} | {run.wall:.2f} | "
                     + " | ".join(f"{run.steps[name]:.2f}" for name in STEPS)
                     + f" | {run.other:.2f} | {run.load:.1f} | {run.open_files} |")
    return lines


def growth_check(runs: list[CloneRun], count: Callable[[CloneRun], float], unit: str,
                 ) -> tuple[list[str], list[str]]:
    """Per step, for each pair of consecutive runs: the step's time ratio beside the ratio of
    `count` (files or bytes). The table, and the steps that grew faster than linearly."""
    pairs = list(zip(runs, runs[1:], strict=False))
    header = "| step | " + " | ".join(
        f"{a.label} → {b.label} ({unit} ×{count(b) / count(a):.2f})" for a, b in pairs) + " |"
    lines = [header, "|---" * (len(pairs) + 1) + "|"]
    flagged = []
    for name in (*STEPS, "other", "wall"):
        cells = []
        for a, b in pairs:
            grew = ratio(step_of(b, name), step_of(a, name))
            limit = count(b) / count(a) * TOLERANCE
            mark = " **faster than linear**" if grew > limit else ""
            if mark:
                flagged.append(f"{name} ({a.label} → {b.label}: ×{grew:.2f} > ×{limit:.2f})")
            cells.append(f"×{grew:.2f}{mark}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines, flagged


def step_of(run: CloneRun, name: str) -> float:
    return run.wall if name == "wall" else run.step(name)


def per_file_cost(runs: list[CloneRun]) -> list[str]:
    """Each step's time above the first run's, per 1 000 files above its count: constant when a
    step is linear in files, rising when it is worse."""
    base = runs[0]
    lines = ["| step | " + " | ".join(r.label for r in runs[1:]) + " |",
             "|---" * len(runs) + "|"]
    for name in (*STEPS, "other", "wall"):
        cells = [f"{(step_of(r, name) - step_of(base, name)) / (r.files - base.files) * 1e6:+.1f}"
                 for r in runs[1:]]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def verdict(flagged: list[str], what: str) -> str:
    if not flagged:
        return (f"No step grows faster than linearly in {what} (a step is flagged when its "
                f"time ratio exceeds the {what} ratio × {TOLERANCE}; times under "
                f"{FLOOR_SECONDS * 1000:.0f} ms count as {FLOOR_SECONDS * 1000:.0f} ms).")
    return (f"Faster than linear in {what} (time ratio > {what} ratio × {TOLERANCE}): "
            + "; ".join(flagged) + ".")


def size_report(runs: list[CloneRun]) -> list[str]:
    per_gib = [r.wall / (r.data_bytes / GIB) for r in runs]
    lines = ["**Clone wall time vs data size** (one table of random 1000-byte rows; one donor "
             "grown between clones)", "",
             "| data dir | files | wall time | MB/s (data dir / wall) | s per GiB | growth "
             "(s per GiB ÷ smallest's) |", "|---|---|---|---|---|---|"]
    for run, seconds in zip(runs, per_gib, strict=True):
        lines.append(f"| {run.data_bytes / GIB:.2f} GiB | {run.files} | {run.wall:.2f} s | "
                     f"{run.data_bytes / 1e6 / run.wall:.0f} | {seconds:.2f} | "
                     f"{seconds / per_gib[0]:.2f} |")
    return [*lines, *per_step(runs, "data", lambda r: r.data_bytes, "bytes",
                              "Growth per step between consecutive sizes:")]


def per_step(runs: list[CloneRun], first: str, count: Callable[[CloneRun], float], unit: str,
             growth: str) -> list[str]:
    """The tail of an axis's report: each step's seconds, their growth against `count`, and
    the verdict."""
    check, flagged = growth_check(runs, count, unit)
    return ["", "Per step (seconds, from each clone's log):", "", *steps_table(runs, first),
            "", growth, "", *check, "", verdict(flagged, unit)]


def tables_report(runs: list[CloneRun], creation: dict[int, float], gib: float) -> list[str]:
    lines = [f"**Clone wall time vs number of tables** (data dir {gib:g} GiB at every count: "
             "N-1 tables of one row, i.e. InnoDB's smallest .ibd, 64 KiB, plus a .frm, in "
             f"schemas of {TABLES_PER_SCHEMA}; one table holds the rest)", "",
             "| tables | files | data dir | creating the tables (not counted) | wall time | "
             "MB/s | wall ÷ first's |", "|---|---|---|---|---|---|---|"]
    for run, count in zip(runs, creation, strict=True):
        lines.append(f"| {count} | {run.files} | {run.data_bytes / GIB:.2f} GiB | "
                     f"{creation[count]:.0f} s | {run.wall:.2f} s | "
                     f"{run.data_bytes / 1e6 / run.wall:.0f} | {run.wall / runs[0].wall:.2f} |")
    return [*lines, *per_step(runs, "tables", lambda r: r.files, "files",
                              "Growth per step between consecutive table counts (time ratio; "
                              "the file ratio in the header):"), "",
            f"Each step's time above the {runs[0].label} clone's, in ms per 1 000 files added "
            "(about constant for a step that is linear in files):", "", *per_file_cost(runs)]


def scale_report(run: ScaleRun) -> list[str]:
    met = "met" if run.ready <= run.target else (
        f"missed by {run.ready - run.target:.1f} s")
    lines = [f"**`local scale` 1 → 2 to the new pod's `/readyz` 200** (the primary's data dir "
             f"{run.data_bytes / GIB:.2f} GiB; real pods of `mysqlsts local`, loopback)", "",
             "| measure | seconds |", "|---|---|",
             f"| `local scale` started → mysql-1 `/readyz` 200 | {run.ready:.2f} |",
             f"| the clone's own time (its log: `clone complete ... in`) | "
             f"{run.clone_seconds:.2f} |",
             f"| ratio ready / clone | {run.ready / run.clone_seconds:.2f} |",
             f"| target 1.3 × clone + 5 s | {run.target:.2f} ({met}) |", "",
             "Where the time goes (seconds after `local scale` started; phases as the pod "
             "stamped them):", "", "| event | at | since the previous |", "|---|---|---|"]
    previous = 0.0
    for event, at in run.timeline.items():
        lines.append(f"| {event} | {at:.2f} | {at - previous:.2f} |")
        previous = at
    lines += ["", "The clone's steps: " + ", ".join(
        f"{name} {seconds:.2f} s" for name, seconds in run.clone_steps.items()) + "."]
    return lines


# -- main -------------------------------------------------------------------------------------


def container_soft_limit(soft: int) -> tuple[int, int]:
    """Set this process's soft open-files limit to `soft` (0: leave it), as a container runtime
    sets it (Docker 25 and containerd 2: 1024), for the donor's tools and the clones, which
    inherit it; mysqlsts raises it to the hard limit for its backup tools. (soft, hard)."""
    current, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def within_hard_limit(counts: list[int], hard: int) -> tuple[list[int], str]:
    """mariabackup keeps one descriptor per tablespace open (backup and prepare): counts the
    hard limit cannot hold become the largest that it can, and the sentence that says so."""
    most = (hard - FD_MARGIN) // 1000 * 1000
    kept = sorted({min(count, most) for count in counts})
    if kept == counts:
        return counts, ""
    return kept, (f"The largest table count is {most} instead of {max(counts)}: mariabackup "
                  "holds one descriptor per tablespace at once, and this machine's hard "
                  f"open-files limit is {hard}, which the bench cannot raise (no "
                  "CAP_SYS_RESOURCE); a pod needs a hard limit above its number of tables.")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(f"scale_bench: stopped by signal {signum}")  # the finally blocks clean up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    env = os.environ.get
    parser.add_argument("--sizes", default=env("MYSQLSTS_BENCH_SIZES", "1,2,4"),
                        help="data dir GiB per clone of the size axis [%(default)s]")
    parser.add_argument("--tables", default=env("MYSQLSTS_BENCH_TABLES", "1,1000,10000,50000"),
                        help="table counts of the table axis [%(default)s]")
    parser.add_argument("--tables-gib", type=float, default=env("MYSQLSTS_BENCH_TABLES_GIB"),
                        help="data dir GiB at every table count [the whole GiB above what the "
                        "largest count takes before any row]")
    parser.add_argument("--scale-gib", type=float, default=env("MYSQLSTS_BENCH_SCALE_GIB"),
                        help="GiB on the local set's primary [the smallest of --sizes]")
    parser.add_argument("--parts", default="sizes,tables,scale")
    parser.add_argument("--nofile-soft", type=int,
                        default=int(env("MYSQLSTS_BENCH_NOFILE_SOFT", "1024")),
                        help="soft open-files limit to run with, as a container's; 0 keeps "
                        "this machine's [%(default)s]")
    parser.add_argument("--repeat", type=int, default=2, help="clones per point; the fastest "
                        "counts [%(default)s]")
    parser.add_argument("--write-docs", type=Path)
    args = parser.parse_args()
    sizes = option_list(args.sizes, float)
    counts = [int(c) for c in option_list(args.tables, int)]
    parts = set(args.parts.split(","))
    soft, hard = container_soft_limit(args.nofile_soft)
    counts, reduced = within_hard_limit(counts, hard)
    tables_gib = args.tables_gib or float(math.ceil(smallest_total(counts)))
    if "tables" in parts and tables_gib < smallest_total(counts):
        raise SystemExit(f"scale_bench: {max(counts)} tables need --tables-gib >= "
                         f"{smallest_total(counts):.2f} (each takes at least "
                         f"{SMALL_TABLE_BYTES // 1024} KiB on disk)")
    signal.signal(signal.SIGTERM, _stop)
    load = LoadWatch()
    sections: list[str] = []
    if "sizes" in parts:
        sections += ["", *size_report(size_axis(sizes, args.repeat))]
    if "tables" in parts:
        runs, creation = tables_axis(counts, tables_gib, args.repeat)
        sections += ["", *tables_report(runs, creation, tables_gib)]
        if reduced:
            sections += ["", reduced]
    if "scale" in parts:
        sections += ["", *scale_report(scale_to_ready(args.scale_gib or sizes[0]))]
    text = "\n".join([
        "Real MariaDB servers and `mysqlsts clone` processes on this machine, over loopback: "
        "these figures are about how the cost grows, not about a link's speed. Product "
        f"defaults (compression auto, mariabackup --parallel=2, mbstream --parallel=2); "
        f"open-files limit soft {soft} (as a container runtime sets it), hard {hard}. Wall "
        "time is the `mysqlsts clone` process from start to exit; each step's seconds come "
        "from the clone's own log lines. "
        + (f"The fastest of {args.repeat} clones per point. " if args.repeat > 1 else
           "One clone per point. ")
        + "The 2-core machine is shared with other engineers' test runs (its load is above, "
        "and per clone in the tables); ratios within one run are what compare.",
        *sections,
    ])
    publish(text, section="scale-bench", heading=HEADING, load=load, write_docs=args.write_docs,
            tools=[["mariabackup", "--version"]])


if __name__ == "__main__":
    main()
