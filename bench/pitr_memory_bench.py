"""Point-in-time recovery's memory (issue 18 item 3): the peak RSS of `mysqlsts backup
restore --to-gtid` through --mib MiB of archive, against the same restore through an eighth of
it, in one run; prints figures, not a test.

A primary with a small data set (bench.archive_bench's ArchiveBench, --gib) archives into a
file:// store (`mysqlsts archive`, its own process); a base backup is taken, then one client
writes transactions of --row-kib KiB of random bytes each until the binary log has grown by
--mib MiB. Two recoveries from that backup follow, each `mysqlsts backup restore` in its own
process: to the GTID an eighth of the way through the writes, and to the last one. Each
process reports its own peak resident set (getrusage(RUSAGE_SELF).ru_maxrss at exit: the
Python process that reads the archive, not the scratch server or the extractor it starts).
The recovery writes the chosen transactions to relay log files as it reads each segment, so
the two peaks should be about equal: memory does not grow with the archive range.

Run: .venv/bin/python -m bench.pitr_memory_bench [--mib 64] [--row-kib 60] [--gib 0.02]
     [--write-docs docs/benchmarks.md]
Loopback ports: 2 of the clone-bench share (tests/ports.py). Everything it creates is removed
at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.archive_bench import ArchiveBench, bench_options, prepared, seq_of
from bench.harness import dir_bytes, log, publish

HEADING = "## Point-in-time recovery memory"

# Runs `mysqlsts` (argv after -c) as `python -m mysqlsts` would, and prints its own peak
# resident set on the way out, whatever the exit.
CHILD = ("import atexit, resource, runpy, sys; "
         "atexit.register(lambda: print(f'maxrss_kib={resource.getrusage("
         "resource.RUSAGE_SELF).ru_maxrss}', file=sys.stderr)); "
         "sys.argv = ['mysqlsts', *sys.argv[1:]]; runpy.run_module('mysqlsts', "
         "run_name='__main__')")


def write_mib(bench: ArchiveBench, mib: float, row_kib: int) -> tuple[str, str]:
    """Transactions of `row_kib` KiB until the binary log grew by `mib` MiB: (the GTID an
    eighth of the way, the last GTID)."""
    bench.sql("CREATE TABLE bench.blobs (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
              "payload VARBINARY(1024) NOT NULL) ENGINE=InnoDB")
    # Each row is RANDOM_BYTES(1000), about one KiB of binary log.
    insert = (f"INSERT INTO bench.blobs (payload) SELECT RANDOM_BYTES(1000) "
              f"FROM bench.seq_1_to_{row_kib}")
    wanted = int(mib * 1024**2)
    eighth = ""
    with contextlib.closing(bench.connect()) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW BINARY LOGS")
        start = sum(int(row[1]) for row in cursor.fetchall())
        while True:
            for _ in range(50):
                cursor.execute(insert)
            cursor.execute("SHOW BINARY LOGS")
            grown = sum(int(row[1]) for row in cursor.fetchall()) - start
            cursor.execute("SELECT @@global.gtid_binlog_pos")
            row = cursor.fetchone()
            assert row is not None
            if not eighth and grown >= wanted // 8:
                eighth = str(row[0])
            if grown >= wanted:
                return eighth, str(row[0])


def restore_peak(url: str, target: str, data_dir: Path) -> tuple[int, float]:
    """`mysqlsts backup restore --to-gtid target` in its own process: (its peak RSS in KiB,
    seconds)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", CHILD, "backup", "restore", "--store", url,
                           "--data-dir", str(data_dir), "--to-gtid", target],
                          capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    lines = done.stderr.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("maxrss_kib="):
        raise SystemExit(f"pitr_memory_bench: the restore failed: {done.stderr.strip()}")
    shutil.rmtree(data_dir)
    return int(lines[-1].split("=", 1)[1]), seconds


def report(runs: list[tuple[str, float, int, float]], segments: int) -> str:
    (_, small_mib, small_kib, _), (_, whole_mib, whole_kib, _) = runs
    lines = [
        "`bench/pitr_memory_bench.py`: `mysqlsts backup restore --to-gtid` in its own process, "
        "from one base backup through two lengths of the same archive (transactions of random "
        f"bytes; {segments} segments in all); peak RSS of that process "
        "(getrusage ru_maxrss at its exit).",
        "",
        "| archive applied | peak RSS | restore seconds |",
        "|---|---|---|",
        *(f"| {name}: {size:.1f} MiB of binary log | {kib / 1024:.0f} MiB | {seconds:.1f} |"
          for name, size, kib, seconds in runs),
        "",
        f"Ratio in this run: peak RSS through {whole_mib:.0f} MiB / through {small_mib:.0f} "
        f"MiB = {whole_kib / small_kib:.2f} (the archive range {whole_mib / small_mib:.1f}x "
        "longer).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--mib", type=float, default=64.0,
                        help="binary log written after the base backup, MiB")
    parser.add_argument("--row-kib", type=int, default=60, help="each transaction's size, KiB")
    bench_options(parser, 0.02, "size of the base backup's data set")
    args = parser.parse_args()
    with prepared("mysqlsts-pitr-memory-bench-", args.gib) as (bench, load):
        with bench.archiver():
            bench.warm_up()
            base = bench.take_backup()
            log(f"writing {args.mib:.0f} MiB of binary log after backup gtid={base}")
            eighth, end = write_mib(bench, args.mib, args.row_kib)
            bench.wait_archived(seq_of(end), timeout=600)
        bench.stop_server()
        load.sample()
        segments = sum(1 for path in (bench.store_dir / "binlog" / "segments").rglob("*")
                       if path.is_file())
        runs = []
        written = {eighth: args.mib / 8, end: args.mib}
        for name, target in (("an eighth", eighth), ("the whole", end)):
            log(f"restore through {name} of the archive, to {target}")
            kib, seconds = restore_peak(bench.url, target, bench.root / "restored")
            log(f"peak RSS {kib / 1024:.0f} MiB in {seconds:.1f}s")
            runs.append((name, written[target], kib, seconds))
            load.sample()
        log(f"store holds {dir_bytes(bench.store_dir) / 1024**2:.0f} MiB")
        publish(report(runs, segments), section="pitr-memory-bench",
                heading=HEADING, load=load, write_docs=args.write_docs)


if __name__ == "__main__":
    main()
