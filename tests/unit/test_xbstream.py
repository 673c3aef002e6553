"""Picking the binlog info out of a real xbstream (made by Debian's mbstream), in any slicing."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest

from mysqlsts.core.xbstream import FileCatcher, StreamFormatError


@pytest.fixture
def stream(tmp_path: Path) -> bytes:
    if shutil.which("mbstream") is None:
        pytest.skip("mbstream is not installed (scripts/setup-host test)")
    (tmp_path / "big").write_bytes(os.urandom(3_000_000))
    (tmp_path / "xtrabackup_binlog_info").write_text("mysql-bin.000003\t385\t0-100-42\n")
    (tmp_path / "after").write_bytes(b"x" * 70_000)
    return subprocess.run(["mbstream", "-c", "big", "xtrabackup_binlog_info", "after"],
                          cwd=tmp_path, check=True, capture_output=True).stdout


@pytest.mark.parametrize("seed", range(5))
def test_catches_the_file_in_any_slicing(stream: bytes, seed: int) -> None:
    catcher = FileCatcher(["xtrabackup_binlog_info", "xtrabackup_slave_info"])
    rng = random.Random(seed)
    offset = 0
    while offset < len(stream):
        size = rng.choice([1, 7, 19, 4096, 1 << 20])
        catcher.feed(stream[offset:offset + size])
        offset += size
    assert catcher.text() == {"xtrabackup_binlog_info": "mysql-bin.000003\t385\t0-100-42\n"}


def test_not_a_stream() -> None:
    with pytest.raises(StreamFormatError, match="not an xbstream"):
        FileCatcher(["x"]).feed(b"tar archive follows......")
