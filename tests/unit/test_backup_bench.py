"""bench/backup_bench.py's report: each ratio the issue names is computed from the run's own
figures, the best of each step's runs over the best of its baseline's."""

from __future__ import annotations

import argparse
import time

import pytest

from bench.backup_bench import (
    SPLIT,
    BackupBench,
    arguments,
    best_timeline,
    data_set,
    link_rate,
    report,
    slow_link_seconds,
    timeline,
)
from bench.harness import DATA_SETS, RANDOM_ROWS, REALISTIC_ROWS, DonorHost
from bench.link_bench import RealisticDonor
from bench.netlink import Readings, rate_bytes
from tests.ports import PortPool

RUNS = {"backup_s3": [12.0, 14.0], "raw_upload": [11.0, 10.0], "backup_file": [22.0, 23.0],
        "clone": [20.0, 25.0], "restore_s3": [30.0, 31.0], "raw_download": [5.0, 6.0],
        "prepare": [20.0], "restore_file": [11.0, 12.0], "drill": [40.0],
        "backup_reads": [21.0]}
# CPU seconds of each run (none for backup_reads: its CPU is the reads' too, it is not shown)
CPU = {name: [3.0 * i + 1 for i, _ in enumerate(runs)] for name, runs in RUNS.items()
       if name != "backup_reads"}


def test_the_ratios_are_best_to_best_of_one_run_and_name_their_targets():
    text = report(RUNS, CPU, [0.001] * 99 + [0.002], [0.001] * 98 + [0.004] * 2,
                  2 * 1024**3, 1024**3, 32, None, RANDOM_ROWS)
    assert "backup to S3 / raw upload = 1.20 (target <= 1.2)" in text
    assert "backup to file:// / clone = 1.10 (target <= 1.1)" in text
    assert "restore from S3 / (raw download + prepare) = 1.20 (target <= 1.2)" in text
    assert "restore from file:// / clone = 0.55 (target <= 1.1)" in text
    assert "p99 during / idle = 4.0" in text
    assert "Data dir 2.00 GiB" in text and "1.00 GiB in 32 parts (zstd; 0.50 of" in text
    # The CPU seconds shown are those of the best run (raw upload's second, backup_s3's first).
    assert "| raw upload of the same objects, same client and server | 10.0 | 215 | 4.0 | " \
        "11.0, 10.0 |" in text
    assert "| backup to the S3 server (`mysqlsts backup`) | 12.0 | 179 | 1.0 | 12.0, 14.0 |" \
        in text
    assert "tc tbf" not in text and "over the" not in text  # --s3-link none: loopback only


LINKED = {**RUNS, "backup_s3_link": [9.0, 8.8], "raw_upload_link": [8.0, 8.1],
          "restore_s3_link": [9.5, 9.9], "raw_download_link": [8.4, 8.3]}
LINKED_CPU = {**CPU, **{name: [5.0, 6.0] for name in LINKED if name.endswith("_link")}}


def test_the_link_server_has_its_own_rows_and_ratios_beside_the_loopback_ones():
    text = report(LINKED, LINKED_CPU, [0.001] * 100, [0.002] * 100, 2 * 1024**3, 10**9, 32,
                  "1gbit", REALISTIC_ROWS)
    assert "backup to S3 (loopback) / raw upload (loopback) = 1.20 (target <= 1.2)" in text
    assert ("backup to S3 over the 1gbit link / raw upload over the 1gbit link = 1.10 "
            "(target <= 1.2)") in text
    # (8.3 + 20.0): the prepare is the same step whichever server the objects came from.
    assert ("restore from S3 over the 1gbit link / (raw download over the 1gbit link + "
            "prepare) = 0.34 (target <= 1.2)") in text
    assert "`tc tbf rate 1gbit` both ways (125 MB/s)" in text
    assert "at least 8.0 s each way" in text  # 1e9 stored bytes at 125e6 bytes/s
    assert ("| raw download of the same objects over the 1gbit link | 8.3 | 259 | 6.0 | "
            "8.4, 8.3 |") in text


@pytest.mark.parametrize(("rate", "per_second"), [
    ("1gbit", 125e6), ("500mbit", 62.5e6), ("100mbps", 100e6), ("1.5Gbit", 187.5e6),
    ("8kibit", 1024.0),
])
def test_a_tc_rate_is_read_as_tc_reads_it(rate, per_second):
    assert rate_bytes(rate) == per_second
    assert link_rate(rate) == rate


@pytest.mark.parametrize("rate", ["1000", "fast", "1 gbit", "-1gbit", ""])
def test_a_rate_tc_would_not_read_the_same_way_is_refused(rate):
    with pytest.raises(ValueError):
        rate_bytes(rate)
    with pytest.raises(argparse.ArgumentTypeError):
        link_rate(rate)


def test_none_is_the_loopback_server_only():
    assert link_rate("none") is None


def test_the_block_names_the_data_set_it_measured():
    for data in (REALISTIC_ROWS, RANDOM_ROWS):
        text = report(RUNS, CPU, [0.001] * 100, [0.002] * 100, 2 * 1024**3, 10**9, 32, None,
                      data)
        assert text.splitlines()[0].startswith(
            f"`bench/backup_bench.py`: `mysqlsts backup` / `backup restore` / `backup verify` "
            f"of a donor of {data.label} (`--data {data.name}`),")
    assert REALISTIC_ROWS.label == "realistic rows (sysbench-like)"


def test_data_is_read_by_name_and_the_default_is_the_issues_realistic_set(capsys):
    assert arguments([]).data is REALISTIC_ROWS  # what `make bench` runs
    assert arguments(["--data", "random"]).data is RANDOM_ROWS
    assert arguments(["--data", "realistic"]).data is REALISTIC_ROWS
    for wrong in ("Realistic", "sysbench", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="one of: realistic, random"):
            data_set(wrong)
    # An unknown set: one line on stderr and exit 2, before anything is created.
    with pytest.raises(SystemExit) as exited:
        arguments(["--data", "oltp"])
    assert exited.value.code == 2
    assert "argument --data: unknown data set 'oltp' (one of: realistic, random)" \
        in capsys.readouterr().err


def test_the_backup_benchs_donor_is_filled_with_the_chosen_set(tmp_path):
    ports = PortPool("clone-bench")
    for data in (REALISTIC_ROWS, RANDOM_ROWS):
        (tmp_path / data.name).mkdir()
        bench = BackupBench(tmp_path / data.name, 0.01, ports, data)
        ports.release(bench.port, 3)  # nothing listens: the constructor only names its ports
        assert data.table == bench.TABLE
        assert data.insert == bench.INSERT


def test_both_benches_fill_the_realistic_set_from_the_one_definition():
    # link_bench's RealisticDonor and the backup bench's --data realistic are the same rows.
    assert REALISTIC_ROWS.table == RealisticDonor.TABLE
    assert REALISTIC_ROWS.insert == RealisticDonor.INSERT
    assert RANDOM_ROWS.table == DonorHost.TABLE
    assert RANDOM_ROWS.insert == DonorHost.INSERT
    assert set(DATA_SETS) == {"realistic", "random"}
    assert "RANDOM_BYTES(1000)" in RANDOM_ROWS.insert and "RAND()" in REALISTIC_ROWS.insert


STDERR = """2026-12-05T08:00:00 INFO mysqlsts.clone.to_backup: something else
2026-12-05T08:00:00 DEBUG mysqlsts.store.parts: backup timeline step=start at=1000.250
2026-12-05T08:00:01 DEBUG mysqlsts.store.parts: backup timeline step=first_byte at=1000.500
2026-12-05T08:00:04 DEBUG mysqlsts.store.parts: backup timeline step=manifest_written at=1004.000
"""


def test_a_backups_timeline_is_read_from_its_debug_lines_as_seconds_since_its_launch():
    assert timeline(STDERR, 1000.0, 4.2) == {"start": 0.25, "first_byte": 0.5,
                                             "manifest_written": 4.0, "exit": 4.2}
    assert timeline("no marks\n", 1000.0, 1.5) == {"exit": 1.5}
    fast, slow = {"exit": 3.0}, {"exit": 5.0}
    assert best_timeline([5.0, 3.0], [slow, fast]) is fast


def test_the_split_of_each_s3_backups_best_run_is_a_table_beside_the_figures():
    splits = {"backup_s3": timeline(STDERR, 1000.0, 4.2),
              "backup_s3_link": {name: 0.1 * n for n, (name, _) in enumerate(SPLIT)}}
    text = report(LINKED, LINKED_CPU, [0.001] * 100, [0.002] * 100, 2 * 1024**3, 10**9, 32,
                  "1gbit", REALISTIC_ROWS, splits)
    assert "| step | loopback | over the 1gbit link |" in text
    assert "| the stream's first byte (`first_byte`) | 0.50 | 0.30 |" in text
    assert "| the first part stored (`first_part_stored`) | - | 0.60 |" in text  # not marked
    assert "| the command's exit (`exit`) | 4.20 | 1.10 |" in text
    # Without splits (or loopback only, unmarked): no table, the rest as before.
    assert "| step | loopback" not in report(LINKED, LINKED_CPU, [0.001] * 100, [0.002] * 100,
                                              2 * 1024**3, 10**9, 32, "1gbit", REALISTIC_ROWS)
    alone = report(RUNS, CPU, [0.001] * 100, [0.002] * 100, 2 * 1024**3, 10**9, 32, None,
                   REALISTIC_ROWS, {"backup_s3": splits["backup_s3"]})
    assert "| step | S3 server |" in alone and "over the" not in alone


def test_the_link_is_slow_where_it_carried_less_than_half_its_rate_within_the_window():
    # Readings (epoch s, bytes): full rate, a stall, half rate exactly, then full again.
    samples = [(10.0, 0), (10.5, 100), (11.0, 200), (11.5, 210), (12.0, 260), (12.5, 360)]
    assert slow_link_seconds(samples, 10.0, 12.5, 200.0) == 0.5  # only the stall
    assert slow_link_seconds(samples, 10.0, 12.5, 201.0) == 1.0  # 100/s is below 201/2
    assert slow_link_seconds(samples, 11.2, 12.5, 200.0) == 0.0  # the stall began before
    assert slow_link_seconds([(1.0, 5), (1.0, 5)], 0.0, 2.0, 100.0) == 0.0  # no time: skipped
    text = report(LINKED, LINKED_CPU, [0.001] * 100, [0.002] * 100, 2 * 1024**3, 10**9, 32,
                  "1gbit", REALISTIC_ROWS, {"backup_s3_link": {"exit": 1.0}}, (0.5, 4.25))
    assert ("from the first part's upload to the last part stored (4.25 s), the link carried "
            "less than half its rate for 0.50 s") in text


def test_readings_are_taken_on_entering_while_inside_and_on_leaving():
    count = iter(range(1000))
    ticks = iter(range(1000))
    with Readings(lambda: next(count), 0.01, lambda: float(next(ticks))) as readings:
        time.sleep(0.1)
    values = [value for _, value in readings.samples]
    assert values == list(range(len(values))) and len(values) >= 4  # in order, none lost
    assert [t for t, _ in readings.samples] == [float(v) for v in values]
