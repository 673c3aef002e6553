"""Clone benchmark (issue 2 §7): prints figures; not a test.

Builds a data dir of at least MYSQLSTS_BENCH_GIB GiB (default 1.0) under MYSQLSTS_BENCH_DIR
(default: a new directory in /tmp), then clones it over loopback three ways and prints wall
time and MB/s for each:

  (a) `mysqlsts clone` from a DonorServer (authenticated, verified stream, then prepare);
  (b) the Kubernetes example's pipeline: ncat serving `mariabackup --backup --stream=xbstream`,
      `ncat --recv-only | mbstream -x`, then `mariabackup --prepare`;
  (c) the physical floor: `tar` of the stopped data dir through ncat.

Run: .venv/bin/python -m bench.clone_bench [--repeat N] [--write-docs docs/benchmarks.md]
Loopback ports: 3 of the clone-bench share (tests/ports.py). Everything it creates is removed at
the end.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (
    DonorHost,
    LoadWatch,
    dir_bytes,
    log,
    publish,
    scratch,
)
from tests.ports import PortPool

HEADING = "## Clone"
TOOLS = [["mariabackup", "--version"], ["ncat", "--version"]]


@dataclass
class Result:
    name: str
    seconds: float
    stream_bytes: int  # bytes that crossed the socket

    @property
    def mb_per_s(self) -> float:
        return self.stream_bytes / 1e6 / self.seconds


class Bench(DonorHost):
    """The donor's server and the three ways of cloning it."""

    def __init__(self, root: Path, gib: float, ports: PortPool) -> None:
        first = ports.block(3)
        super().__init__(root, gib, port=first)
        self.donor_port, self.ncat_port = first + 1, first + 2

    # -- (a) mysqlsts clone --------------------------------------------------------------
    def run_mysqlsts(self, backup_parallel: int, extract_parallel: int) -> Result:
        target = self.root / "clone-a"
        env = self.clone_env(target, "127.0.0.1", self.donor_port,
                             CLONE_PARALLEL=str(extract_parallel))
        with self.donor("127.0.0.1", self.donor_port, parallel=backup_parallel) as done:
            started = time.monotonic()
            subprocess.run([sys.executable, "-m", "mysqlsts", "clone"], env=env, check=True)
            seconds = time.monotonic() - started
        assert done and done[0][0] == "ok", done
        shutil.rmtree(target)
        return Result(f"(a) mysqlsts clone, backup --parallel={backup_parallel}, "
                      f"mbstream --parallel={extract_parallel}", seconds, done[0][1])

    # -- (b) the Kubernetes example ------------------------------------------------------
    def run_example(self) -> Result:
        target = self.root / "clone-b"
        target.mkdir()
        backup = (f"mariabackup --defaults-extra-file={self.secrets / 'backup.cnf'} --backup "
                  f"--slave-info --stream=xbstream --host=127.0.0.1 --port={self.port} "
                  f"--target-dir={self.root / 'example-tmp'} --datadir={self.data}")
        server = subprocess.Popen(
            ["ncat", "--listen", "--keep-open", "--send-only", "--max-conns=1",
             "127.0.0.1", str(self.ncat_port), "-c", f"{backup} 2>/dev/null"],
            start_new_session=True)
        try:
            time.sleep(0.5)
            started = time.monotonic()
            # As the example: no pipefail, exactly its two steps.
            subprocess.run(
                f"ncat --recv-only 127.0.0.1 {self.ncat_port} | mbstream -x -C {target}",
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
            ["ncat", "--listen", "--send-only", "--max-conns=1", "127.0.0.1", str(self.ncat_port),
             "-c", f"tar -C {self.data} --exclude=./mysql-bin.* -cf - ."], start_new_session=True,
            stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            started = time.monotonic()
            subprocess.run(
                f"set -o pipefail; ncat --recv-only 127.0.0.1 {self.ncat_port} "
                f"| tar -xf - -C {target}",
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


def repeat(times: int, run: Callable[[], Result], load: LoadWatch) -> list[Result]:
    results = []
    for _ in range(times):
        load.sample()
        os.sync()  # earlier runs' dirty pages must not be written back during this one
        results.append(run())
        log(f"{results[-1].name}: {results[-1].seconds:.2f}s {results[-1].mb_per_s:.0f} MB/s")
    return results


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--write-docs", type=Path)
    args = parser.parse_args()
    gib = float(os.environ.get("MYSQLSTS_BENCH_GIB", "1.0"))
    root = scratch("mysqlsts-bench-")
    load = LoadWatch()
    bench = Bench(root, gib, PortPool("clone-bench"))
    try:
        bench.build()
        data_bytes = dir_bytes(bench.data)
        rows = []
        for backup_parallel, extract_parallel in ((1, 1), (2, 2), (4, 2)):
            runs = repeat(args.repeat,
                          functools.partial(bench.run_mysqlsts, backup_parallel, extract_parallel),
                          load)
            rows.append((best(runs), runs))
        example = repeat(args.repeat, bench.run_example, load)
        rows.append((best(example), example))
        bench.stop_server()
        tar = repeat(args.repeat, bench.run_tar, load)
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
        publish(report(rows, data_bytes, ratios), section="clone-bench", heading=HEADING,
                load=load, write_docs=args.write_docs, tools=TOOLS)
    finally:
        bench.stop_server()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
