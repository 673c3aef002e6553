"""The benchmarks are not run by `make test` (they print figures, nothing asserts a time), but
they must keep importing and parsing their arguments as the code under them changes; and what
they share (bench/harness.py) computes what their blocks in docs/benchmarks.md say."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness import latency_ms, paced, percentile, write_section

REPO = Path(__file__).resolve().parents[2]
BENCHES = sorted(p.stem for p in (REPO / "bench").glob("*_bench.py"))


def test_every_bench_is_run_by_make_bench():
    script = (REPO / "scripts" / "bench").read_text()
    assert BENCHES and all(f"-m bench.{name}" in script for name in BENCHES)


@pytest.mark.parametrize("name", BENCHES)
def test_bench_starts_as_a_module_and_edits_no_import_path(name):
    done = subprocess.run([sys.executable, "-m", f"bench.{name}", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--write-docs" in done.stdout
    # Shared code comes from packages (bench.harness, tests.*), never through sys.path edits.
    assert "sys.path" not in (REPO / "bench" / f"{name}.py").read_text()


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 101)]  # 1..100, shuffled order must not matter
    shuffled = values[::2] + values[1::2]
    assert percentile(shuffled, 50) == 50.0
    assert percentile(shuffled, 99) == 99.0
    assert percentile(shuffled, 100) == 100.0
    # Of 50 values p99 is the largest: no interpolation below a value that was observed.
    assert percentile(values[:50], 99) == 50.0
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    assert latency_ms([0.001] * 99 + [0.5]) == "1.00 / 1.00 / 500.00 ms"


def test_paced_keeps_its_schedule_when_one_answer_is_slow():
    answers = iter([0.15, 0, 0, 0, 0])

    def request() -> float:
        took = next(answers)
        time.sleep(took)
        return took

    started = time.perf_counter()
    latencies = paced(5, 20.0, request)  # one every 50 ms; the first takes 150 ms
    elapsed = time.perf_counter() - started
    assert latencies == [0.15, 0, 0, 0, 0]
    # Open loop: the late requests go at once instead of shifting the schedule by 150 ms.
    assert elapsed < 0.15 + 0.1 + 0.05


def test_a_section_is_replaced_in_place_or_appended_under_its_heading(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\n## A\n\n<!-- a:begin -->\nold\n<!-- a:end -->\n\nprose\n")
    write_section(docs, "a", "## A", "new figures")
    write_section(docs, "b", "## B", "b figures")
    assert docs.read_text() == (
        "# Benchmarks\n\n## A\n\n<!-- a:begin -->\nnew figures\n<!-- a:end -->\n\nprose\n"
        "\n## B\n\n<!-- b:begin -->\nb figures\n<!-- b:end -->\n"
    )
