"""Clone over an emulated 1 Gbit/s link (issue 12): prints figures; not a test. Needs root.

The link: a veth pair whose receiver end lives in a network namespace this bench creates
(`mysqlsts-bench-<pid>`), with a `tc tbf` rate limit (1 Gbit/s by default) on both ends. The donor
side (its MariaDB server, the DonorServer, the ncat senders) stays in the host's namespace, where
the server is reachable on loopback; every receiver runs inside the namespace, so every byte of
every method crosses the limited link. tbf, not netem: this kernel has no sch_netem, so no delay
is added (RTT is that of a veth pair, tens of microseconds; a real cross-zone link adds ~1 ms,
which a 4 MiB socket buffer covers at 1 Gbit/s). The namespace and its veth pair are removed at
exit, also on failure.

For each data set (MYSQLSTS_BENCH_GIB GiB, default 1.0; "random": 1000-byte random rows,
incompressible; "realistic": sysbench-like rows of digits, words, numbers and dates):

  (a) mysqlsts clone (compression auto: zstd while the link, not the compressor, is the
      bottleneck), (a1) with compression zstd (every chunk that shrinks, waiting for the
      compressor) and (a0) with compression none; the donor's chunk counts (zstd / raw);
  (b) the Kubernetes example's pipeline (ncat + mbstream, then prepare);
  (c) tar of the stopped data dir through ncat;

then, on the random set: the rate cap (--clone-max-rate) target vs the rate measured on the
veth, and the donor's point-SELECT latency (p50/p99 at a fixed rate) idle, during an
unthrottled clone and during a throttled one.

Run (root): .venv/bin/python -m bench.link_bench [--write-docs docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    REALISTIC_ROWS,
    DonorHost,
    LoadWatch,
    PointSelects,
    dir_bytes,
    latency_ms,
    log,
    publish,
    scratch,
)
from bench.netlink import Link, Readings
from mysqlsts.core.clone_window import ChunkCounts
from tests.ports import PortPool


@dataclass(frozen=True)
class Ports:
    server: int  # the donor's mariadbd, on loopback
    donor: int  # the DonorServer, on the veth's address
    ncat: int  # the ncat senders of (b) and (c), on the veth's address


@functools.cache
def ports() -> Ports:
    """Reserved once per run, on first use (not on import)."""
    pool = PortPool("clone-bench")
    return Ports(pool.one(), pool.one(), pool.one())

SUBNET = "10.231.77"
DONOR_IP = f"{SUBNET}.1"  # the host's end of the link (bench/netlink.py); receivers run inside
PROBE_RATE = 200  # point SELECTs per second
POINT_SELECT = "SELECT id, LENGTH(payload) FROM bench.rows WHERE id = %s"


class RealisticDonor(DonorHost):
    """A donor of harness.REALISTIC_ROWS: what an OLTP table's pages hold."""

    TABLE, INSERT = REALISTIC_ROWS.table, REALISTIC_ROWS.insert


@dataclass
class Run:
    name: str
    seconds: float
    data_bytes: int  # what the backup tool / tar produced
    wire_bytes: int  # payload bytes the donor side put on the link (headers excluded)
    chunks: ChunkCounts | None = None  # a mysqlsts clone's: how its chunks went


class WireMeter(Readings):
    """Samples the link's counters while something runs: total payload bytes, and the rate over
    the steady part (from 5 % to 95 % of the bytes), where start-up and the tail do not count."""

    HEADERS = 66  # Ethernet + IPv4 + TCP with timestamps, once per skb

    def __init__(self, link: Link) -> None:
        self._link = link
        super().__init__(self._payload, 0.1)

    def _payload(self) -> int:
        octets, packets = self._link.tx()
        return octets - packets * self.HEADERS

    @property
    def total(self) -> int:
        return self.samples[-1][1] - self.samples[0][1]

    def steady_rate(self) -> float:
        base = self.samples[0][1]
        low = next(s for s in self.samples if s[1] - base >= 0.05 * self.total)
        high = next(s for s in self.samples if s[1] - base >= 0.95 * self.total)
        return (high[1] - low[1]) / max(high[0] - low[0], 1e-9)


class LinkBench:
    def __init__(self, bench: DonorHost, link: Link) -> None:
        self.bench, self.link = bench, link
        self.root = bench.root

    def clone(self, name: str, compression: str, max_rate: float | None = None,
              meter: WireMeter | None = None) -> Run:
        target = self.root / "clone-a"
        env = self.bench.clone_env(target, DONOR_IP, ports().donor, CLONE_PARALLEL="2",
                                   CLONE_COMPRESSION=compression)
        with self.bench.donor(DONOR_IP, ports().donor, parallel=2, compression=compression,
                              max_rate=max_rate) as done:
            meter = meter or WireMeter(self.link)
            os.sync()
            started = time.monotonic()
            with meter:
                subprocess.run(self.link.inside([sys.executable, "-m", "mysqlsts", "clone"]),
                               env=env, check=True)
            seconds = time.monotonic() - started
        assert done and done[0][0] == "ok", done
        shutil.rmtree(target)
        return Run(name, seconds, done[0][1], meter.total, done[0][3])

    def example(self) -> Run:
        target = self.root / "clone-b"
        target.mkdir()
        backup = (f"mariabackup --defaults-extra-file={self.bench.secrets / 'backup.cnf'} "
                  "--backup --slave-info --stream=xbstream --host=127.0.0.1 "
                  f"--port={ports().server} "
                  f"--target-dir={self.root / 'example-tmp'} --datadir={self.bench.data}")
        return self._through_ncat(
            "(b) k8s example: ncat + mbstream, then prepare", f"{backup} 2>/dev/null",
            f"ncat --recv-only {DONOR_IP} {ports().ncat} | mbstream -x -C {target}",
            lambda: subprocess.run(["mariabackup", "--prepare", f"--target-dir={target}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   check=True), target)

    def tar(self) -> Run:
        target = self.root / "clone-c"
        target.mkdir()
        return self._through_ncat(
            "(c) tar of the stopped data dir through ncat",
            f"tar -C {self.bench.data} --exclude=./mysql-bin.* -cf - .",
            f"set -o pipefail; ncat --recv-only {DONOR_IP} {ports().ncat} | tar -xf - -C {target}",
            lambda: None, target)

    def _through_ncat(self, name: str, send: str, receive: str, after: Callable[[], object],
                      target: Path) -> Run:
        server = subprocess.Popen(
            ["ncat", "--listen", "--send-only", "--max-conns=1", DONOR_IP, str(ports().ncat),
             "-c", send], start_new_session=True, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            os.sync()
            started = time.monotonic()
            with WireMeter(self.link) as meter:
                subprocess.run(self.link.inside(["bash", "-c", receive]), check=True)
            after()
            seconds = time.monotonic() - started
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            server.wait()
        data_bytes = dir_bytes(target)
        shutil.rmtree(target)
        return Run(name, seconds, data_bytes, meter.total)


def reported(run: Run) -> Run:
    log(f"{run.name}: {run.seconds:.2f}s data={run.data_bytes} wire={run.wire_bytes} "
        f"chunks={run.chunks}")
    return run


def chunk_split(chunks: ChunkCounts | None) -> str:
    if chunks is None:
        return ""
    return f"{chunks.compressed} / {chunks.raw}"


def median_run(runs: list[Run]) -> Run:
    """The run with the median wall time (the lower middle one of an even count)."""
    return sorted(runs, key=lambda run: run.seconds)[(len(runs) - 1) // 2]


def methods_table(label: str, data_bytes: int, methods: list[list[Run]]) -> list[str]:
    """One row per method, from the run with its median time; the last method is (c)."""
    c = median_run(methods[-1])
    lines = [f"**{label}** ({data_bytes / 1024**3:.2f} GiB data dir)", "",
             "| method | wall time (median) | runs (s) | bytes on the link | wire / data "
             "| time / (c) | chunks zstd / raw |",
             "|---|---|---|---|---|---|---|"]
    for runs in methods:
        run = median_run(runs)
        lines.append(f"| {run.name} | {run.seconds:.2f} s | "
                     f"{', '.join(f'{r.seconds:.1f}' for r in runs)} | "
                     f"{run.wire_bytes / 1e6:.0f} MB | "
                     f"{run.wire_bytes / max(run.data_bytes, 1):.2f} | "
                     f"{run.seconds / c.seconds:.2f} | {chunk_split(run.chunks)} |")
    return lines


def settle(bench: DonorHost) -> None:
    """Wait until InnoDB has written back the pages the build dirtied: the first clone would
    otherwise compete with that flushing (in earlier runs it took up to twice the others')."""
    conn = bench.connect()
    started = time.monotonic()
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
            (previous,) = cursor.fetchone()
            cursor.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
            dirty = -1
            while dirty != 0 and time.monotonic() - started < 300:
                cursor.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                dirty = int(cursor.fetchone()[1])
                time.sleep(0.5)
            cursor.execute("SET GLOBAL innodb_max_dirty_pages_pct = %s", (previous,))
    finally:
        conn.close()
    os.sync()
    log(f"settled: dirty pages {dirty} after {time.monotonic() - started:.0f}s")


def data_set(kind: type[DonorHost], label: str, gib: float, link: Link, gentle: bool,
             repeat: int) -> tuple[list[str], list[str]]:
    """The methods table of one data set, and (if `gentle`) the rate cap and latency lines.
    The methods run `repeat` times, in rounds of a, a1, a0 and b (each round starting one
    further on; then c with the server stopped), so a slow spell of the shared machine does
    not fall on one method only."""
    root = scratch(f"mysqlsts-link-{kind.__name__.lower()}-")
    bench = kind(root, gib, ports().server)
    try:
        bench.build()
        settle(bench)
        data_bytes = dir_bytes(bench.data)
        lb = LinkBench(bench, link)
        runners: list[Callable[[], Run]] = [
            lambda: lb.clone("(a) mysqlsts clone, compression auto (link-aware zstd)", "auto"),
            lambda: lb.clone("(a1) mysqlsts clone, compression zstd (every chunk)", "zstd"),
            lambda: lb.clone("(a0) mysqlsts clone, compression none", "none"),
            lb.example,
        ]
        # The first clone after the build runs slower (~20 %, flushed dirty pages or not):
        # one not reported, then rounds that each start with another method.
        reported(lb.clone("warm-up, not counted", "none"))
        methods: list[list[Run]] = [[] for _ in range(len(runners) + 1)]
        for round_ in range(repeat):
            for i in range(len(runners)):
                method = (i + round_) % len(runners)
                methods[method].append(reported(runners[method]()))
        gentle_lines: list[str] = []
        if gentle:
            gentle_lines = rate_and_latency(lb)
        bench.stop_server()
        for _ in range(repeat):
            methods[-1].append(reported(lb.tar()))
        table = methods_table(label, data_bytes, methods)
        a, a0, c = (median_run(methods[i]) for i in (0, 2, -1))
        table += ["", f"a/c = {a.seconds / c.seconds:.2f}, a/a0 = {a.seconds / a0.seconds:.2f} "
                  "(median wall times)"]
        return table, gentle_lines
    finally:
        bench.stop_server()
        shutil.rmtree(root, ignore_errors=True)


def rate_and_latency(lb: LinkBench) -> list[str]:
    lines = ["| --clone-max-rate target | measured on the link (steady 5-95 %) | error |",
             "|---|---|---|"]
    for target in (30e6, 60e6):
        meter = WireMeter(lb.link)
        reported(lb.clone(f"(a) capped at {target / 1e6:.0f} MB/s", "none", target, meter))
        measured = meter.steady_rate()
        lines.append(f"| {target / 1e6:.1f} MB/s | {measured / 1e6:.2f} MB/s | "
                     f"{(measured - target) / target * 100:+.1f} % |")
        log(f"rate cap target={target / 1e6:.1f} MB/s measured={measured / 1e6:.2f} MB/s")
    highest = lb.bench.max_id()

    def reads() -> PointSelects:
        return PointSelects(lb.bench.connect, POINT_SELECT, highest, PROBE_RATE)

    lines += ["", f"Donor point-SELECT latency at {PROBE_RATE}/s (same server, same 2 cores as "
              "the receiver):", "",
              "| donor state | queries | p50 / p99 / max |", "|---|---|---|"]
    with reads() as idle:
        time.sleep(10)
    lines.append(f"| idle (10 s) | {len(idle.all())} | {latency_ms(idle.all())} |")
    for name, rate in (("clone, unthrottled", None), ("clone, --clone-max-rate 30 MB/s", 30e6)):
        with reads() as probe:
            run = reported(lb.clone(f"(a) {name}", "auto", rate))
        lines.append(f"| {name} ({run.seconds:.0f} s) | {len(probe.all())} | "
                     f"{latency_ms(probe.all())} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", type=Path)
    parser.add_argument("--rate", default="1gbit", help="tc tbf rate of the link")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each method")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("link_bench: needs root (network namespaces and tc)")
    gib = float(os.environ.get("MYSQLSTS_BENCH_GIB", "1.0"))
    load = LoadWatch()
    link = Link(args.rate, SUBNET)
    try:
        random_table, gentle = data_set(DonorHost, "random rows (incompressible)", gib, link, True,
                                        args.repeat)
        realistic_table, _ = data_set(RealisticDonor, REALISTIC_ROWS.label, gib,
                                      link, False, args.repeat)
    finally:
        link.close()
    text = "\n".join([
        f"Link: veth pair into a network namespace, `tc tbf rate {args.rate}` both ways, no "
        "added delay (no sch_netem in this kernel). Wall time of (a), (a1), (a0) and (b) "
        "includes "
        "`--prepare`; the donor's page cache is warm, InnoDB's dirty pages are flushed and one "
        f"clone is run before the first counted one. {args.repeat} runs per method, in rounds.",
        "", *random_table, "", *realistic_table, "",
        "Targets: realistic (a) <= 0.6 x (c); incompressible (a) <= 1.1 x (c).", "",
        "**Rate cap** (compression none, random rows; measured from the veth's counters, "
        "headers excluded):", "", *gentle,
    ])
    publish(text, section="link-bench", heading="## Clone over a 1 Gbit/s link", load=load,
            write_docs=args.write_docs, tools=[["mariabackup", "--version"]])


if __name__ == "__main__":
    main()
