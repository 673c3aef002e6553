"""Consistency check cost (issue 13, item 14): prints figures; not a test.

A local set of 2 pods (`mysqlsts local up`: a primary and a replica, real mariadbd and
sidecars), one table of --rows rows (about 100 bytes each). Then, with a client running point
SELECTs by primary key on the primary at --rate per second the whole time:

  - idle: the SELECTs' latency, and how fast the primary's binary log grows without a pass
    (the heartbeat's rows);
  - one pass per duty cycle (0.25, the default, and 1.0, no pauses) through
    `mysqlsts.consistency.on_demand.check_set`, as `mysqlsts checksum` runs it: the pass's
    wall and busy time, how long the replica then took to have applied it, the SELECTs'
    latency during the pass, and the binary log bytes the pass added per chunk.

Run: .venv/bin/python -m bench.consistency_bench [--rows 1000000] [--write-docs docs/benchmarks.md]
Loopback ports from the consistency-bench share (tests/ports.py). The set and its files are
removed at the end.
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from bench.harness import LoadWatch, PointSelects, percentile, publish, scratch
from mysqlsts.consistency.on_demand import check_set
from mysqlsts.core.peers import PeerAddress
from mysqlsts.options import ConsistencyOptions, HeartbeatOptions
from tests.localset import LOCAL_SET_SPAN, LocalSet, mysqlsts_command
from tests.ports import PortPool

HEADING = "## Consistency check"
POINT_SELECT = "SELECT b FROM app.t WHERE id = %s"


def binlog_bytes(local: LocalSet) -> int:
    return sum(int(row[1]) for row in local.sql(0, "SHOW BINARY LOGS"))


@dataclass
class Pass:
    duty: float
    wall: float
    busy: float
    chunks: int
    catch_up: float
    binlog_per_chunk: float
    p50_ms: float
    p99_ms: float


def one_pass(local: LocalSet, reader: PointSelects, duty: float, heartbeat_rate: float) -> Pass:
    pods = local.status()["pods"]
    password = local.root_password
    before = binlog_bytes(local)
    reader.phase = f"pass {duty}"
    began = time.monotonic()
    primary, replica = (PeerAddress(n, pods[n]["mysql"]["host"], pods[n]["mysql"]["port"], 0, 0)
                        for n in (0, 1))
    result = check_set(
        "mysql", primary, [replica], password=password,
        database=HeartbeatOptions().heartbeat_database,
        options=ConsistencyOptions(consistency_duty_cycle=duty), wait_timeout=3600,
    )
    total = time.monotonic() - began
    reader.phase = "after"
    assert result.exit_code == 0, result.lines()
    grown = binlog_bytes(local) - before - heartbeat_rate * total
    latencies = reader.latencies[f"pass {duty}"]
    return Pass(duty, result.check.seconds, result.check.busy_seconds, result.check.chunks,
                max(0.0, total - result.check.seconds), grown / max(result.check.chunks, 1),
                percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000)


def run(args: argparse.Namespace, root: Path, load: LoadWatch,
        ) -> tuple[dict[str, Any], list[Pass]]:
    local = LocalSet(root / "set", PortPool("consistency-bench").block(LOCAL_SET_SPAN))
    figures: dict[str, Any] = {}
    try:
        local.up(2)
        local.sql(0, "CREATE DATABASE app",
                  "CREATE TABLE app.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, a INT NOT NULL, "
                  "b VARCHAR(64) NOT NULL, c DATETIME NOT NULL, d DOUBLE)")
        began = time.monotonic()
        for start in range(0, args.rows, 100_000):
            count = min(100_000, args.rows - start)
            local.sql(0, "INSERT INTO app.t (a, b, c, d) SELECT seq, MD5(seq), "
                         "FROM_UNIXTIME(1700000000 + seq), seq / 3 "
                         f"FROM app.seq_1_to_{count}")
        local.wait_caught_up([1], timeout=3600)
        figures["load_seconds"] = time.monotonic() - began
        local.sql(0, "ANALYZE TABLE app.t")
        figures["table_mib"] = float(local.value(
            0, "SELECT (DATA_LENGTH + INDEX_LENGTH) / 1048576 FROM information_schema.TABLES "
               "WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 't'"))
        load.sample()
        reader = PointSelects(lambda: local.connect(0), POINT_SELECT, args.rows, args.rate, 14)
        reader.phase = "warm-up"
        reader.start()
        time.sleep(2)
        reader.phase = "idle"
        idle_from, idle_bytes = time.monotonic(), binlog_bytes(local)
        time.sleep(args.idle)
        heartbeat_rate = (binlog_bytes(local) - idle_bytes) / (time.monotonic() - idle_from)
        figures["heartbeat_binlog_bytes_per_s"] = heartbeat_rate
        idle = reader.latencies["idle"]
        figures["idle_p50_ms"] = percentile(idle, 50) * 1000
        figures["idle_p99_ms"] = percentile(idle, 99) * 1000
        passes = []
        for duty in (0.25, 1.0):
            passes.append(one_pass(local, reader, duty, heartbeat_rate))
            load.sample()
        reader.halt.set()
        reader.join(10)
        return figures, passes
    finally:
        if (local.directory / "spec.json").exists():
            local.run("down", "--dir", str(local.directory), "--purge", timeout=400, check=False)


def report(figures: dict[str, Any], passes: list[Pass], args: argparse.Namespace) -> list[str]:
    lines = [
        f"A local set of 2 pods (primary and replica on the same machine, `sync_binlog=1`), one "
        f"InnoDB table of {args.rows:,} rows ({figures['table_mib']:.0f} MiB with its primary "
        f"key; loaded in {figures['load_seconds']:.0f} s), default chunks of "
        f"{ConsistencyOptions().consistency_chunk_rows} rows. A client runs point SELECTs by "
        f"primary key on the primary at {args.rate:.0f}/s throughout. "
        "`bench/consistency_bench.py`.",
        "",
        "| duty cycle | pass wall time | busy (chunk work) | chunks | replica applied it after "
        "| binlog per chunk | point SELECT p50 / p99 during |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in passes:
        lines.append(
            f"| {p.duty:g} | {p.wall:.1f} s | {p.busy:.1f} s | {p.chunks} | "
            f"{p.catch_up:.1f} s | {p.binlog_per_chunk:.0f} B | "
            f"{p.p50_ms:.2f} / {p.p99_ms:.2f} ms |"
        )
    lines += [
        "",
        f"Idle (no pass): point SELECT p50 / p99 {figures['idle_p50_ms']:.2f} / "
        f"{figures['idle_p99_ms']:.2f} ms; the heartbeat grows the binary log by "
        f"{figures['heartbeat_binlog_bytes_per_s']:.0f} B/s (subtracted above).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate", type=float, default=200.0, help="point SELECTs per second")
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds measured")
    parser.add_argument("--write-docs", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("mariadbd") is None or not mysqlsts_command():
        raise SystemExit("consistency_bench: needs mariadbd (scripts/setup-host test)")
    root = scratch("mysqlsts-consistency-bench-")
    load = LoadWatch()
    try:
        figures, passes = run(args, root, load)
    except pymysql.MySQLError as exc:
        raise SystemExit(f"consistency_bench: {exc}") from exc
    finally:
        shutil.rmtree(root, ignore_errors=True)
    publish("\n".join(report(figures, passes, args)), section="consistency-bench",
            heading=HEADING, load=load, write_docs=args.write_docs)


if __name__ == "__main__":
    main()
