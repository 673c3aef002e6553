"""Backup benchmark (issue 17 "Figures"): base backups to and restores from a store, against
what the same bytes cost without them; prints figures, not a test.

The clone bench's donor (bench.clone_bench.Bench: one InnoDB table, --gib GiB, binary logs
purged), filled with the --data set (bench/harness.py DATA_SETS): `realistic` (the default, the
issue's set: sysbench-like rows, as link_bench's; they compress) or `random` (1000-byte random
rows, the clone bench's; they do not), is backed up by `mysqlsts backup` through a DonorServer
at its defaults (no rate cap), in one run:

- to moto's S3 server (tests/s3server.py, its own process) against a raw upload of the very
  objects that backup stored (the same compressed bytes) through the same client
  (store/s3store.py) and server, as many at once as the backup writes parts: once to a server
  on loopback, and once to a second server in a network namespace behind an emulated link
  (bench/netlink.py: a veth pair with a `tc tbf` rate limit, --s3-link, 1gbit by default), so
  every byte of the backup, the restore and their raw baselines crosses the same limited link,
  as it crosses the network to S3 itself (needs root; `--s3-link none`: loopback only);
- to a file:// store on the same disk against `mysqlsts clone` of the same data (the clone
  bench's (a), product defaults: backup --parallel=2, mbstream --parallel=2);
- restore from each S3 server (`backup restore`) against a raw download of the same objects
  (as many at once as the restore reads ahead) plus the clone's prepare step on that backup;
  restore from file:// against the same clone;
- the donor's point-SELECT latency during a backup against idle;
- the restore drill (`backup verify`) of the file:// backup.

Every time is the wall time of the command (a process each, so Python's start-up is in each),
with the CPU seconds all the bench's processes used meanwhile (the command and its children,
the in-process donor and its mariabackup, the donor's mariadbd, both S3 servers): on 2 cores,
a step whose CPU seconds near twice its wall time was bound by the cores, not by the store.
The backups, restores, the clone and their baselines run --repeat times, interleaved; the best
of each is compared.

Run: .venv/bin/python -m bench.backup_bench [--data realistic|random] [--gib 1] [--repeat 2]
     [--s3-link 1gbit|none] [--write-docs docs/benchmarks.md]
Loopback ports: 3 of the clone-bench share (tests/ports.py) and one the S3 server picks; the
linked server listens on the namespace's address (LINK_SUBNET.2), on a port it picks.
Everything it creates is removed at the end (the namespace and its veth pair also on failure
or SIGTERM).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import itertools
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.clone_bench import Bench
from bench.harness import (
    DATA_SETS,
    DataSet,
    LoadWatch,
    PointSelects,
    dir_bytes,
    latency_ms,
    log,
    percentile,
    publish,
    scratch,
)
from bench.netlink import Link, Readings, rate_bytes
from mysqlsts.clone.receiver import prepare
from mysqlsts.clone.tools import tool_for
from mysqlsts.core.backup_manifest import Manifest
from mysqlsts.core.backup_parts import unpack_part
from mysqlsts.store.base import ObjectStore, read_all
from mysqlsts.store.catalog import read_catalog
from mysqlsts.store.open import open_store
from mysqlsts.store.parts import PARALLEL
from mysqlsts.store.settings import S3Settings
from tests.ports import PortPool
from tests.s3server import REGION, S3Server, create_bucket

T = TypeVar("T")
HEADING = "## Backup and restore"
TOOLS = [["mariabackup", "--version"]]
BUCKET = "bench"
READ_AHEAD = 2  # store.parts.read_parts's default: parts a restore fetches at once
PREPARE_MEMORY = "256M"  # `backup restore`'s default --prepare-memory
SELECT_RATE = 100.0
IDLE_SECONDS = 20.0
# A pod's typical share of its node's link to S3: the rate every byte to the second S3 server
# crosses. Not tuned to a figure; another rate is a flag away and printed with its figures.
LINK_RATE = "1gbit"
LINK_SUBNET = "10.231.78"  # link_bench's is 10.231.77: the two may run at the same time


# store.parts.mark's debug line: a step of the backup's timeline, at the epoch seconds given.
TIMELINE = re.compile(r"backup timeline step=(\w+) at=(\d+\.\d+)")
# The timeline's steps in order, as the report names them (the part's from store.parts,
# the others from clone.to_backup), and "exit": the command's end, as the bench saw it.
SPLIT = [
    ("start", "Python's start-up, the options, the store's client"),
    ("cleanup_done", "the cleanup's listing of the store"),
    ("donor_started", "the donor's handshake and its tool started"),
    ("first_byte", "the stream's first byte"),
    ("first_part_cut", "the first part's plain bytes in"),
    ("first_part_upload", "the first part packed, its upload starts"),
    ("first_part_stored", "the first part stored"),
    ("last_byte", "the donor's trailer"),
    ("parts_stored", "the last part stored"),
    ("parts_checked", "the parts listed"),
    ("manifest_written", "the manifest written"),
    ("exit", "the command's exit"),
]


@dataclass(frozen=True)
class Ran:
    """A command's wall seconds, its stdout, and its timeline: each step it marked (a backup,
    at --log-level debug) and "exit", as seconds since its launch."""

    seconds: float
    stdout: str
    timeline: dict[str, float]
    launched: float  # epoch seconds


def timeline(stderr: str, launched: float, seconds: float) -> dict[str, float]:
    """The steps a command's stderr marks, as seconds since `launched` (epoch), and "exit"."""
    steps = {found[1]: float(found[2]) - launched for found in TIMELINE.finditer(stderr)}
    steps["exit"] = seconds
    return steps


SAMPLE_SECONDS = 0.02  # how often the link's byte count is read during a backup over it


def slow_link_seconds(samples: Sequence[tuple[float, int]], start: float, end: float,
                      rate: float) -> float:
    """Of the intervals between readings (epoch time, bytes sent) that lie within [start, end],
    how many seconds the link carried less than half of `rate` bytes per second."""
    return sum(t1 - t0 for (t0, b0), (t1, b1) in itertools.pairwise(samples)
               if start <= t0 and t1 <= end and t1 > t0 and (b1 - b0) / (t1 - t0) < rate / 2)


def timed(argv: Sequence[str], what: str, *, log_level: str = "info") -> Ran:
    """Run `mysqlsts ARGV...`, or exit naming what failed."""
    launched, started = time.time(), time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mysqlsts", "--log-level", log_level, *argv],
                          capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"backup_bench: {what} failed: {done.stderr.strip()}")
    log(f"{what}: {seconds:.2f}s")
    return Ran(seconds, done.stdout.strip(), timeline(done.stderr, launched, seconds), launched)


def ratio(numerator: float, denominator: float, target: str) -> str:
    return f"{numerator / denominator:.2f} (target {target})"


class Steps:
    """Each step's runs: the wall seconds the step measured, and the CPU seconds the bench's
    processes used while it ran: this one and every child it has waited for (the commands,
    mariabackup), and the long-lived ones in `watched` (S3 servers, mariadbd) by their pids."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = collections.defaultdict(list)
        self.cpu: dict[str, list[float]] = collections.defaultdict(list)
        self.watched: list[int] = []

    def cpu_now(self) -> float:
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            total += usage.ru_utime + usage.ru_stime
        for pid in self.watched:
            with contextlib.suppress(FileNotFoundError):  # ended: its time is a child's now
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def __call__(self, name: str, step: Callable[[], float]) -> None:
        before = self.cpu_now()
        self.wall[name].append(step())
        self.cpu[name].append(self.cpu_now() - before)


def link_rate(value: str) -> str | None:
    """--s3-link's value: a tc rate, or None for `none` (loopback only)."""
    if value == "none":
        return None
    try:
        rate_bytes(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def data_set(value: str) -> DataSet:
    """--data's value: the name of one of bench/harness.py's DATA_SETS."""
    try:
        return DATA_SETS[value]
    except KeyError:
        raise argparse.ArgumentTypeError(
            f"unknown data set {value!r} (one of: {', '.join(DATA_SETS)})") from None


@dataclass(frozen=True)
class S3Place:
    """One S3 server the backups go to: the suffix of its steps' names in the figures ("" on
    loopback, "_link" behind the link), its bucket's URL and the client's settings for it."""

    key: str
    url: str
    settings: S3Settings
    link: Link | None = None  # the emulated link in front of it, if any


class BackupBench(Bench):
    """The clone bench's donor filled with `data`, its stores, and the ways of moving its
    data."""

    def __init__(self, root: Path, gib: float, ports: PortPool, data: DataSet) -> None:
        super().__init__(root, gib, ports)
        self.TABLE, self.INSERT = data.table, data.insert
        (root / "s3-access").write_text("bench\n")
        (root / "s3-secret").write_text("bench\n")
        self.places: dict[str, S3Place] = {}
        self.last_backup = ""
        self.timelines: dict[str, list[dict[str, float]]] = collections.defaultdict(list)
        # Per backup over a link: (seconds the link ran below half its rate, seconds) between
        # the first part's upload and the last part stored.
        self.slow: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)

    def add_s3(self, key: str, s3: S3Server, link: Link | None = None) -> S3Place:
        """A bucket on `s3` (behind `link`, if given), as the place whose steps end in
        `key`."""
        settings = S3Settings(endpoint=s3.endpoint, region=REGION, path_style=True,
                              access_key_file=self.root / "s3-access",
                              secret_key_file=self.root / "s3-secret")
        create_bucket(s3.endpoint, BUCKET)
        place = S3Place(key, f"s3://{BUCKET}/backups{key}", settings, link)
        self.places[place.url] = place
        return place

    def store_args(self, url: str) -> list[str]:
        if not url.startswith("s3://"):
            return ["--store", url]
        settings = self.places[url].settings
        return ["--store", url, "--s3-endpoint", settings.endpoint, "--s3-region", REGION,
                "--s3-path-style", "--s3-access-key-file", str(settings.access_key_file),
                "--s3-secret-key-file", str(settings.secret_key_file)]

    def backup(self, url: str, what: str) -> float:
        """`mysqlsts backup` into `url` from the donor: its seconds (its id: `last_backup`,
        its timeline appended to `timelines[url]`, and over a link how long the link ran
        below half its rate to `slow[url]`)."""
        if url.startswith("file://"):
            Path(url.removeprefix("file://")).mkdir(exist_ok=True)
        link = self.places[url].link if url in self.places else None
        with self.donor("127.0.0.1", self.donor_port) as done, contextlib.ExitStack() as stack:
            # The bytes the host sent over the link, at epoch times (the timeline's clock).
            samples = stack.enter_context(Readings(
                lambda: link.tx()[0], SAMPLE_SECONDS, time.time)) if link else None
            os.sync()  # earlier runs' dirty pages must not be written back during this one
            ran = timed(
                ["backup", *self.store_args(url), "--donor", f"127.0.0.1:{self.donor_port}",
                 "--clone-token-file", str(self.secrets / "token")], what, log_level="debug")
        assert done and done[0][0] == "ok", done
        self.last_backup = ran.stdout
        self.timelines[url].append(ran.timeline)
        if samples is not None and link is not None:
            start, end = (ran.launched + ran.timeline[step]
                          for step in ("first_part_upload", "parts_stored"))
            self.slow[url].append((slow_link_seconds(samples.samples, start, end, link.rate),
                                   end - start))
        return ran.seconds

    def restore(self, url: str, what: str) -> float:
        target = self.root / "restored"
        os.sync()
        seconds = timed(["backup", "restore", *self.store_args(url), "--data-dir",
                         str(target)], what).seconds
        shutil.rmtree(target)
        return seconds

    def manifest(self, store: ObjectStore, backup_id: str) -> Manifest:
        return next(m for m in read_catalog(store, None).backups if m.backup_id == backup_id)

    # -- the baselines -------------------------------------------------------------------
    def raw_download(self, store: ObjectStore, manifest: Manifest, into: Path,
                     what: str) -> float:
        """The backup's objects as stored, each into a file, READ_AHEAD at once."""
        into.mkdir()

        def fetch(name: str) -> None:
            (into / name.replace("/", "_")).write_bytes(read_all(store, name))

        started = time.monotonic()
        with ThreadPoolExecutor(READ_AHEAD) as pool:
            list(pool.map(fetch, [part.name for part in manifest.parts]))
        seconds = time.monotonic() - started
        log(f"{what}: {seconds:.2f}s")
        return seconds

    def raw_upload(self, store: ObjectStore, files: Path, what: str) -> float:
        """The downloaded objects written again under other names, PARALLEL at once (and then
        deleted: the S3 server holds its objects in memory)."""
        names = {path: f"raw-{files.name}/{path.name}" for path in sorted(files.iterdir())}

        def put(path: Path) -> None:
            store.put_new(names[path], path.read_bytes())

        started = time.monotonic()
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(put, names))
        seconds = time.monotonic() - started
        log(f"{what}: {seconds:.2f}s")
        for name in names.values():
            store.delete(name)
        return seconds

    def extract(self, manifest: Manifest, files: Path) -> Path:
        """This backup extracted from the downloaded objects into a staging dir (untimed: the
        prepare is what is measured)."""
        staging = self.root / "prepare"
        staging.mkdir()
        tool = tool_for("mariadb")
        extractor = subprocess.Popen([tool.stream, "-x", "-C", str(staging)],
                                     stdin=subprocess.PIPE)
        assert extractor.stdin is not None
        for part in manifest.parts:
            extractor.stdin.write(unpack_part(
                part.name, (files / part.name.replace("/", "_")).read_bytes(), None))
        extractor.stdin.close()
        if extractor.wait() != 0:
            raise SystemExit("backup_bench: extracting the backup failed")
        os.sync()
        return staging

    def prepare_time(self, staging: Path) -> float:
        """The clone's prepare step on an extracted backup."""
        started = time.monotonic()
        prepare(staging, tool_for("mariadb"), PREPARE_MEMORY)
        seconds = time.monotonic() - started
        shutil.rmtree(staging)
        log(f"prepare: {seconds:.2f}s")
        return seconds

    def s3_round(self, place: S3Place, files: Path, step: Steps) -> Manifest:
        """A backup to `place`, the raw download and upload of its objects (into and from
        `files`, kept for the prepare), and a restore; the stored backup's manifest."""
        where, key = " over the link" if place.key else "", place.key
        store = open_store(place.url, place.settings)
        step(f"backup_s3{key}", lambda: self.backup(place.url, f"backup to S3{where}"))
        manifest = self.manifest(store, self.last_backup)
        step(f"raw_download{key}",
             lambda: self.raw_download(store, manifest, files, f"raw download{where}"))
        step(f"raw_upload{key}", lambda: self.raw_upload(store, files, f"raw upload{where}"))
        step(f"restore_s3{key}", lambda: self.restore(place.url, f"restore from S3{where}"))
        return manifest

    def clone_seconds(self) -> float:
        os.sync()
        return float(self.run_mysqlsts(2, 2).seconds)

    def donor_latency(self, url: str, load: LoadWatch) -> tuple[list[float], list[float], float]:
        """Point SELECTs at SELECT_RATE on the donor, idle and then during a backup: (idle
        latencies, during-backup latencies, the backup's seconds)."""
        statement = "SELECT * FROM bench.rows WHERE id = %s"  # whichever the data set
        with PointSelects(self.connect, statement, self.max_id(), SELECT_RATE) as reads:
            reads.phase = "idle"
            time.sleep(IDLE_SECONDS)
            load.sample()
            reads.phase = "backup"
            seconds = self.backup(url, "backup to file:// under reads")
            reads.phase = "after"
        return reads.latencies["idle"], reads.latencies["backup"], seconds


def s3_rows(key: str, where: str) -> list[tuple[str, str]]:
    """The table's rows of one S3 server: its backup and restore, and their raw baselines."""
    return [
        (f"backup_s3{key}", f"backup to the S3 server{where} (`mysqlsts backup`)"),
        (f"raw_upload{key}", f"raw upload of the same objects{where}, same client and server"),
        (f"restore_s3{key}", f"restore from the S3 server{where} (`backup restore`)"),
        (f"raw_download{key}", f"raw download of the same objects{where}"),
    ]


def s3_ratios(f: dict[str, float], key: str, where: str) -> list[str]:
    return [
        f"- backup to S3{where} / raw upload{where} = "
        f"{ratio(f[f'backup_s3{key}'], f[f'raw_upload{key}'], '<= 1.2')}",
        f"- restore from S3{where} / (raw download{where} + prepare) = "
        f"{ratio(f[f'restore_s3{key}'], f[f'raw_download{key}'] + f['prepare'], '<= 1.2')}",
    ]


def split_rows(splits: dict[str, dict[str, float]], link: str | None,
               slow: tuple[float, float] | None = None) -> list[str]:
    """The table of where each S3 backup's best run spent its time: each step's seconds since
    the launch (`splits`: step name -> its timeline; a step it lacks is shown as -), and
    `slow`: (seconds the link ran below half its rate, seconds) of the best run over it."""
    columns = [(name, where) for name, where in
               (("backup_s3", "loopback" if link else "S3 server"),
                ("backup_s3_link", f"over the {link} link")) if name in splits]
    if not columns:
        return []
    return [
        "",
        "Where those backups' best runs spend their time: each step's seconds since the "
        "command's launch (its `--log-level debug` lines `backup timeline step=...`, from "
        "clone/to_backup.py and store/parts.py).",
        "",
        f"| step | {' | '.join(where for _, where in columns)} |",
        f"|---|{'---|' * len(columns)}",
        *(f"| {what} (`{step}`) | " + " | ".join(
            f"{splits[name][step]:.2f}" if step in splits[name] else "-"
            for name, _ in columns) + " |" for step, what in SPLIT),
        *([] if slow is None else [
            "",
            f"Over the link, from the first part's upload to the last part stored ({slow[1]:.2f} "
            f"s), the link carried less than half its rate for {slow[0]:.2f} s (its byte count "
            f"read every {SAMPLE_SECONDS * 1000:.0f} ms): the parts were not ready to keep it "
            "busy then."]),
    ]


def report(runs: dict[str, list[float]], cpu: dict[str, list[float]], idle: list[float],
           during: list[float], data_bytes: int, stored_bytes: int, parts: int,
           link: str | None, data: DataSet,
           splits: dict[str, dict[str, float]] | None = None,
           slow: tuple[float, float] | None = None) -> str:
    """The block of docs/benchmarks.md from each step's wall and CPU seconds per run; `link`
    is the rate of the second S3 server's link, or None when only the loopback one ran;
    `data` the set the donor held; `splits` the timeline of each S3 backup's best run, `slow`
    how long the link ran below half its rate during the best one over it (split_rows)."""
    f = {name: min(seconds) for name, seconds in runs.items()}
    best_cpu = {name: seconds[runs[name].index(f[name])] for name, seconds in cpu.items()}
    linked = f" over the {link} link"
    rows = [
        *s3_rows("", ""),
        *(s3_rows("_link", linked) if link else []),
        ("prepare", "prepare of that backup (the clone's step)"),
        ("backup_file", "backup to file:// (`mysqlsts backup`)"),
        ("clone", "clone of the same data (`mysqlsts clone`, incl. prepare)"),
        ("restore_file", "restore from file:// (`backup restore`)"),
        ("drill", "restore drill (`backup verify`, file://)"),
    ]
    mb = data_bytes / 1e6
    where = ("moto's S3 server on loopback and a second one behind an emulated link (below)"
             if link else "moto's S3 server on loopback")
    link_lines = [] if link is None else [
        "",
        f"The link: a veth pair into a network namespace where the second S3 server listens, "
        f"`tc tbf rate {link}` both ways ({rate_bytes(link) / 1e6:.0f} MB/s), no added delay; "
        "the backup, the restore and both raw baselines run on the host, so every byte of "
        "them crosses it. The stored bytes take at least "
        f"{stored_bytes / rate_bytes(link):.1f} s each way at that rate.",
    ]
    lines = [
        "`bench/backup_bench.py`: `mysqlsts backup` / `backup restore` / `backup verify` of "
        f"a donor of {data.label} (`--data {data.name}`), through a DonorServer at its "
        f"defaults (no rate cap), against the same bytes moved without them, all in one run; "
        f"{where}, file:// on the same disk; wall time of each command (its Python start-up "
        "included).",
        "",
        f"Data dir {data_bytes / 1024**3:.2f} GiB ({data_bytes} bytes); the backup stored "
        f"{stored_bytes / 1024**3:.2f} GiB in {parts} parts (zstd; "
        f"{stored_bytes / data_bytes:.2f} of the data dir).",
        *link_lines,
        "",
        "| step | best seconds | MB/s of the data dir | CPU s of that run | runs (s) |",
        "|---|---|---|---|---|",
        *(f"| {what} | {f[name]:.1f} | {mb / f[name]:.0f} | {best_cpu[name]:.1f} | "
          f"{', '.join(f'{s:.1f}' for s in runs[name])} |" for name, what in rows),
        "",
        "CPU s: what all the bench's processes used during that run (the command and its "
        "children, the donor and its mariabackup, the donor's mariadbd, the S3 servers); the "
        f"machine has {os.cpu_count()} cores, so CPU s near {os.cpu_count()} x the wall time "
        "means the cores, not the store or the link, set the pace.",
        *split_rows(splits or {}, link, slow),
        "",
        "Ratios in this run, best to best:",
        *s3_ratios(f, "", " (loopback)" if link else ""),
        *(s3_ratios(f, "_link", linked) if link else []),
        f"- backup to file:// / clone = {ratio(f['backup_file'], f['clone'], '<= 1.1')}",
        f"- restore from file:// / clone = {ratio(f['restore_file'], f['clone'], '<= 1.1')}",
        "",
        f"Donor impact: point SELECTs by random primary key at {SELECT_RATE:.0f}/s on the "
        f"donor, p50 / p99 / max: idle ({len(idle)} reads) {latency_ms(idle)}; during a "
        f"backup to file:// of {f['backup_reads']:.1f} s ({len(during)} reads) "
        f"{latency_ms(during)}; p99 during / idle = "
        f"{percentile(during, 99) / percentile(idle, 99):.1f}.",
    ]
    return "\n".join(lines)


def best_timeline(seconds: list[float], per_run: list[T]) -> T:
    """What was recorded of the fastest of a step's runs (`per_run` in the runs' order)."""
    return per_run[seconds.index(min(seconds))]


def arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--gib", type=float,
                        default=float(os.environ.get("MYSQLSTS_BENCH_GIB", "1.0")),
                        help="size of the data set (default: MYSQLSTS_BENCH_GIB, else 1)")
    parser.add_argument("--data", type=data_set, default=DATA_SETS["realistic"],
                        metavar="|".join(DATA_SETS),
                        help="the rows the donor is filled with (default realistic: the "
                             "issue's set; random: incompressible)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each backup, restore, clone and its baseline")
    parser.add_argument("--s3-link", type=link_rate, default=LINK_RATE, metavar="RATE",
                        help="tc rate of the link to the second S3 server (default "
                             f"{LINK_RATE}; needs root), or none: the loopback server only")
    parser.add_argument("--write-docs", type=Path)
    return parser.parse_args(argv)


def main() -> None:
    args = arguments()
    if args.s3_link is not None and os.geteuid() != 0:
        raise SystemExit("backup_bench: --s3-link needs root (a network namespace and tc); "
                         "run as root or pass --s3-link none")
    # SIGTERM unwinds like an error, so the namespace and the servers are removed then too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("backup_bench: terminated"))
    root = scratch("mysqlsts-backup-bench-")
    load = LoadWatch()
    step = Steps()

    try:
        with contextlib.ExitStack() as stack:
            bench = BackupBench(root, args.gib, PortPool("clone-bench"), args.data)
            servers = [("", stack.enter_context(S3Server(0)))]
            if args.s3_link is not None:
                link = stack.enter_context(Link(args.s3_link, LINK_SUBNET))
                servers.append(("_link", stack.enter_context(
                    S3Server(0, link.inner_ip, link.inside([])))))
            places = [bench.add_s3(key, server, link if key else None)
                      for key, server in servers]
            stack.callback(bench.stop_server)
            bench.build()
            assert bench.server is not None
            step.watched = [bench.server.pid, *(server.pid for _, server in servers)]
            data_bytes = dir_bytes(bench.data)
            file_url = f"file://{root / 'store'}"
            for n in range(args.repeat):
                for place in places:
                    files = root / f"objects-{n}{place.key}"
                    manifest = bench.s3_round(place, files, step)
                    if n == 0 and not place.key:
                        staging = bench.extract(manifest, files)
                        step("prepare", functools.partial(bench.prepare_time, staging))
                    shutil.rmtree(files)
                step("backup_file", lambda: bench.backup(file_url, "backup to file://"))
                step("clone", bench.clone_seconds)
                step("restore_file", lambda: bench.restore(file_url, "restore from file://"))
                load.sample()
            step("drill", lambda: timed(["backup", "verify", "--store", file_url],
                                        "restore drill").seconds)
            idle, during, seconds = bench.donor_latency(f"file://{root / 'store-reads'}", load)
            step.wall["backup_reads"].append(seconds)  # its CPU is the reads' too: not shown
        splits = {f"backup_s3{place.key}": best_timeline(
            step.wall[f"backup_s3{place.key}"], bench.timelines[place.url]) for place in places}
        slow = next((best_timeline(step.wall[f"backup_s3{place.key}"], bench.slow[place.url])
                     for place in places if place.link), None)
        publish(report(step.wall, step.cpu, idle, during, data_bytes, manifest.size,
                       len(manifest.parts), args.s3_link, args.data, splits, slow),
                section="backup-bench", heading=HEADING, load=load,
                write_docs=args.write_docs, tools=TOOLS)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
