"""The clone protocol end to end over loopback: a real DonorServer and receiver session,
with shell commands standing in for the backup tool and the stream extractor."""

import socket
import stat
import tempfile
import threading
import time

import pytest

from mysqlsts.clone.donor import DonorServer
from mysqlsts.clone.handshake import DonorUnavailable
from mysqlsts.clone.receiver import Timeouts, open_session
from mysqlsts.clone.tools import BackupTool
from mysqlsts.core.clone_compression import zstd_compressor
from mysqlsts.core.clone_record import DonorAddress as Candidate
from mysqlsts.errors import CloneError, MysqlstsError
from tests.ports import PortPool

TOKEN = "clone-token-for-tests"
FAST = Timeouts(connect=2, handshake=5, idle=5, progress_interval=0.2)


free_port = PortPool("clone-unit")


@pytest.fixture
def extractor(tmp_path):
    """A stand-in for mbstream: saves the stream it reads to <dir>/stream.bin."""
    script = tmp_path / "extract"
    script.write_text('#!/bin/sh\nexec cat > "$3/stream.bin"\n')
    script.chmod(0o755)
    return BackupTool(backup="unused", stream=str(script))


class Donor:
    def __init__(self, command, **kw):
        self.results = []
        self.commands = 0

        def factory(workdir):
            self.commands += 1
            return ["sh", "-c", command]

        self.server = DonorServer("127.0.0.1", free_port(), TOKEN, factory,
                                  lambda *r: self.results.append(r), **kw)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.candidate = Candidate(0, "127.0.0.1", self.server.address[1])

    def stop(self):
        self.server.shutdown()
        self.thread.join(10)

    def wait_results(self, count, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.results) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return [r[0] for r in self.results]


@pytest.fixture
def donors():
    started = []

    def make(command, **kw):
        donor = Donor(command, **kw)
        started.append(donor)
        return donor

    yield make
    for donor in started:
        donor.stop()


def test_stream_arrives_whole_and_verified(donors, extractor, tmp_path):
    source = tmp_path / "source.bin"
    donor = donors(f"head -c 5000000 /dev/urandom > {source}; cat {source}")
    staging = tmp_path / "staging"
    staging.mkdir()
    session = open_session(donor.candidate, TOKEN, FAST)
    received = session.receive_into(staging, extractor, 1, FAST)
    session.close()
    assert received == 5_000_000
    assert (staging / "stream.bin").read_bytes() == source.read_bytes()
    assert donor.wait_results(1) == ["ok"]
    assert donor.results[0][1] == 5_000_000


def test_wrong_token_is_refused_before_anything_runs(donors):
    donor = donors("echo data")
    with pytest.raises(CloneError, match="does not hold our clone token"):
        open_session(donor.candidate, "another-token", FAST)
    assert donor.wait_results(1) == ["refused"]
    assert donor.commands == 0


def test_second_client_is_told_busy(donors, extractor, tmp_path):
    donor = donors("sleep 2; echo done")
    first = open_session(donor.candidate, TOKEN, FAST)
    with pytest.raises(DonorUnavailable, match="busy"):
        open_session(donor.candidate, TOKEN, FAST)
    (tmp_path / "s").mkdir()
    first.receive_into(tmp_path / "s", extractor, 1, FAST)
    first.close()
    assert sorted(donor.wait_results(2)) == ["ok", "refused"]


def test_backup_failure_on_the_donor_is_an_error(donors, extractor, tmp_path):
    donor = donors("head -c 1000 /dev/zero; echo 'Access denied for user' >&2; exit 3")
    session = open_session(donor.candidate, TOKEN, FAST)
    with pytest.raises(CloneError, match="exit code 3: Access denied for user"):
        session.receive_into(tmp_path, extractor, 1, FAST)
    session.close()
    assert donor.wait_results(1) == ["failed"]


def test_keepalives_carry_a_silent_tool_past_the_idle_timeout(donors, extractor, tmp_path):
    donor = donors("sleep 1.5; echo late", keepalive_interval=0.2)
    session = open_session(donor.candidate, TOKEN, FAST)
    idle = Timeouts(connect=2, handshake=5, idle=0.7, progress_interval=0.2)
    assert session.receive_into(tmp_path, extractor, 1, idle) == 5
    session.close()


def test_a_silent_donor_trips_the_idle_timeout(donors, extractor, tmp_path):
    donor = donors("sleep 3; echo late", keepalive_interval=10)
    session = open_session(donor.candidate, TOKEN, FAST)
    idle = Timeouts(connect=2, handshake=5, idle=0.5, progress_interval=0.2)
    with pytest.raises(CloneError, match="sent nothing for 0s after 0 bytes|sent nothing"):
        session.receive_into(tmp_path, extractor, 1, idle)
    session.close()


def test_a_stream_cut_midway_is_an_error(donors, extractor, tmp_path):
    donor = donors("head -c 200000 /dev/urandom; sleep 10; head -c 1000 /dev/urandom")
    session = open_session(donor.candidate, TOKEN, FAST)
    threading.Timer(0.5, donor.server.shutdown).start()
    with pytest.raises(CloneError, match="ended early after 200000 bytes|broke off"):
        session.receive_into(tmp_path, extractor, 1, FAST)
    session.close()
    assert donor.wait_results(1) == ["failed"]


def test_nobody_listening_is_unavailable():
    with pytest.raises(DonorUnavailable, match="unreachable"):
        open_session(Candidate(0, "127.0.0.1", free_port()), TOKEN, FAST)


def test_a_port_probe_is_not_counted(donors):
    donor = donors("echo x")
    socket.create_connection(donor.candidate and ("127.0.0.1", donor.candidate.port)).close()
    with socket.create_connection(("127.0.0.1", donor.candidate.port)) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        sock.recv(100)
    assert donor.wait_results(1, timeout=3) == ["refused"]  # the HTTP client, not the probe


def test_the_work_dir_is_fixed_private_and_emptied_at_start(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    port = free_port()
    # What a SIGKILLed donor on this port left behind: a credentials file.
    left = tmp_path / f"mysqlsts-donor-{port}"
    left.mkdir(mode=0o755)
    (left / "backup.cnf").write_text("[client]\npassword=secret\n")
    server = DonorServer("127.0.0.1", port, TOKEN, lambda workdir: ["true"])
    try:
        assert server.work_dir == left
        assert list(left.iterdir()) == []
        assert stat.S_IMODE(left.stat().st_mode) == 0o700
    finally:
        server.shutdown()


def test_a_link_at_the_work_dir_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    port = free_port()
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep").write_text("x")
    (tmp_path / f"mysqlsts-donor-{port}").symlink_to(target)
    with pytest.raises(MysqlstsError, match="not a directory of ours"):
        DonorServer("127.0.0.1", port, TOKEN, lambda workdir: ["true"])
    assert (target / "keep").exists()
    # The refused donor released its port.
    (tmp_path / f"mysqlsts-donor-{port}").unlink()
    DonorServer("127.0.0.1", port, TOKEN, lambda workdir: ["true"]).shutdown()


def test_the_credentials_live_in_the_work_dir_only_while_streaming(
        monkeypatch, tmp_path, extractor):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    seen = []

    def factory(workdir):
        (workdir / "backup.cnf").write_text("[client]\n")
        seen.append(sorted(p.name for p in workdir.iterdir()))
        return ["sh", "-c", "echo data"]

    server = DonorServer("127.0.0.1", free_port(), TOKEN, factory)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        session = open_session(Candidate(0, "127.0.0.1", server.address[1]), TOKEN, FAST)
        (tmp_path / "s").mkdir()
        session.receive_into(tmp_path / "s", extractor, 1, FAST)
        session.close()
        deadline = time.monotonic() + 5
        while list(server.work_dir.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert seen == [["backup.cnf"]]
        assert list(server.work_dir.iterdir()) == []
    finally:
        server.shutdown()
        thread.join(10)


# -- auto compression follows the bottleneck (core.clone_window decides; here: real threads) --

def _rows(path, size):
    """`size` bytes of text rows (zstd level 1 shrinks them several times)."""
    rows = b"".join(b"%08d,order-%d,2024-03-%02d,%d.%02d,shipped,warehouse-%d\n"
                    % (i, i * 13, i % 28 + 1, i, i % 100, i % 7) for i in range(200_000))
    with path.open("wb") as handle:
        for _ in range(0, size, len(rows)):
            handle.write(rows)
        handle.truncate(size)
    return path


def _slowed(seconds):
    """A compressor that takes `seconds` more per MiB: a donor whose CPU is busy."""
    def make():
        compress = zstd_compressor()

        def slow(chunk):
            time.sleep(seconds * len(chunk) / 2**20)
            return compress(chunk)
        return slow
    return make


def _clone(donor, extractor, tmp_path, name):
    staging = tmp_path / name
    staging.mkdir()
    started = time.monotonic()
    session = open_session(donor.candidate, TOKEN, FAST)
    received = session.receive_into(staging, extractor, 1, FAST)
    session.close()
    assert donor.wait_results(1) == ["ok"]
    return received, time.monotonic() - started, donor.results[0][3]


def test_a_compressor_slower_than_the_consumer_is_not_waited_for(donors, extractor, tmp_path,
                                                                  caplog):
    source = _rows(tmp_path / "source.bin", 32 * 1024 * 1024)
    raw_size, raw_seconds, _ = _clone(donors(f"cat {source}", compression="none"), extractor,
                                      tmp_path, "raw")
    caplog.set_level("INFO", logger="mysqlsts.clone.donor")
    # 0.15 s a MiB: waiting for it (zstd forced) would take 32 x 0.15 s = 4.8 s or more.
    donor = donors(f"cat {source}", compression="auto", compressor=_slowed(0.15))
    received, seconds, chunks = _clone(donor, extractor, tmp_path, "auto")
    assert received == raw_size == source.stat().st_size
    assert (tmp_path / "auto" / "stream.bin").read_bytes() == source.read_bytes()
    assert chunks.raw >= 0.8 * (chunks.raw + chunks.compressed), chunks
    assert chunks.behind >= 0.8 * chunks.raw, chunks  # raw for the link's sake, not the data's
    assert seconds < 1.5 * raw_seconds + 1.0, (seconds, raw_seconds)
    line = next(r.getMessage() for r in caplog.records if "finished a stream" in r.getMessage())
    assert f"chunks_zstd={chunks.compressed} chunks_raw={chunks.raw} " in line


def test_a_link_slower_than_the_compressor_gets_compressed_frames(donors, extractor, tmp_path):
    size = 48 * 1024 * 1024
    # At the cap (3 MB/s) a raw MiB takes 0.35 s on the wire, the compressor 0.01 s (zeros
    # cost zstd next to no CPU, so this holds on a busy machine too): it keeps ahead, and only
    # the first chunks go raw, before there is a queue to work ahead of (4 to 6 of them, seen
    # in CI: a stream of 48 MiB keeps their share under 15% whatever the machine's load).
    donor = donors(f"head -c {size} /dev/zero", compression="auto",
                   compressor=_slowed(0.01), max_rate=3e6)
    received, seconds, chunks = _clone(donor, extractor, tmp_path, "capped")
    assert received == size
    assert (tmp_path / "capped" / "stream.bin").read_bytes() == bytes(size)
    assert chunks.compressed >= 0.85 * (chunks.raw + chunks.compressed), chunks
    assert seconds < 0.3 * size / 3e6  # raw at the cap: 16.8 s
