"""The donor's backup tool as a child process, with a stand-in tool (a shell script)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mysqlsts.adapters.process import process_alive
from mysqlsts.clone import backup_process
from mysqlsts.clone.backup_process import BackupProcess


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_its_stdout_is_the_stream_and_stderr_says_why_it_failed() -> None:
    tool = BackupProcess(["sh", "-c", "printf stream-bytes; echo '[00] copying' >&2; "
                          "echo '[01] error: cannot open ./db/t.ibd' >&2; "
                          "echo '[02] done' >&2; exit 3"])
    try:
        assert read_all(tool.stdout_fd) == b"stream-bytes"
        assert tool.wait() == 3
        assert tool.failure_tail() == "[01] error: cannot open ./db/t.ibd"
    finally:
        tool.close()


def test_without_an_error_line_the_tail_is_the_last_lines() -> None:
    tool = BackupProcess(["sh", "-c", "for i in 1 2 3 4 5 6 7; do echo line $i >&2; done; exit 1"])
    try:
        assert tool.wait() == 1
        assert tool.failure_tail() == "line 3 | line 4 | line 5 | line 6 | line 7"
    finally:
        tool.close()


def test_a_stop_from_another_thread_ends_the_tool_and_its_children(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The donor's shutdown: the streaming thread, blocked reading the tool, sees the end."""
    monkeypatch.setattr(backup_process, "STOP_GRACE_SECONDS", 0.5)
    marker = str(tmp_path)
    # The tool ignores SIGTERM and has a helper of its own, as a backup tool might.
    helper_argv = f"{sys.executable} -c 'import time; time.sleep(60)' {marker}"
    tool = BackupProcess(["sh", "-c", f"trap '' TERM; {helper_argv} & echo $!; wait"])
    helper = int(os.read(tool.stdout_fd, 64).split()[0])
    assert until(lambda: process_alive(helper, marker)), "the helper runs (once it has exec'd)"
    read: list[bytes] = []
    reader = threading.Thread(target=lambda: read.append(read_all(tool.stdout_fd)))
    reader.start()
    started = time.monotonic()
    tool.stop()
    reader.join(5)
    assert not reader.is_alive() and read == [b""], "the reader saw the stream end"
    assert 0.5 <= time.monotonic() - started < 5
    assert tool.wait() == -signal.SIGKILL
    assert until(lambda: not process_alive(helper, marker)), "its helper went with its group"
    tool.close()
