"""bench/backup_bench.py's report: each ratio the issue names is computed from the run's own
figures, the best of each step's runs over the best of its baseline's."""

from __future__ import annotations

from bench.backup_bench import report

RUNS = {"backup_s3": [12.0, 14.0], "raw_upload": [11.0, 10.0], "backup_file": [22.0, 23.0],
        "clone": [20.0, 25.0], "restore_s3": [30.0, 31.0], "raw_download": [5.0, 6.0],
        "prepare": [20.0], "restore_file": [11.0, 12.0], "drill": [40.0],
        "backup_reads": [21.0]}


def test_the_ratios_are_best_to_best_of_one_run_and_name_their_targets():
    text = report(RUNS, [0.001] * 99 + [0.002], [0.001] * 98 + [0.004] * 2, 2 * 1024**3,
                  1024**3, 32)
    assert "backup to S3 / raw upload = 1.20 (target <= 1.2)" in text
    assert "backup to file:// / clone = 1.10 (target <= 1.1)" in text
    assert "restore from S3 / (raw download + prepare) = 1.20 (target <= 1.2)" in text
    assert "restore from file:// / clone = 0.55 (target <= 1.1)" in text
    assert "p99 during / idle = 4.0" in text
    assert "Data dir 2.00 GiB" in text and "1.00 GiB in 32 parts" in text
    assert "| raw upload of the same objects, same client and server | 10.0 | 215 | 11.0, 10.0 |" \
        in text
