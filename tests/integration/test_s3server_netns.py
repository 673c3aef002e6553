"""tests/s3server.py behind bench/netlink.py's link, as backup_bench runs it: moto's S3 server
started inside the link's network namespace, listening on the namespace's address, is reached
from the host only across the rate-limited veth pair (both ways), and the namespace and the pair
are gone after close. Needs root (network namespaces and tc)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from bench.netlink import Link, rate_bytes
from mysqlsts.store.base import read_all
from mysqlsts.store.open import open_store
from mysqlsts.store.settings import S3Settings
from tests.s3server import ACCESS_KEY, REGION, SECRET_KEY, S3Server, create_bucket

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: network namespaces and tc"),
]

RATE = "40mbit"  # 5 MB/s: a 2 MB object takes >= 0.4 s each way, far above a veth's own time
SUBNET = "10.231.79"  # the benches' are .77 and .78


def namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                          check=True).stdout


def test_the_server_in_the_namespace_is_reached_across_the_limited_link_only(tmp_path: Path):
    (tmp_path / "access").write_text(ACCESS_KEY + "\n")
    (tmp_path / "secret").write_text(SECRET_KEY + "\n")
    data = os.urandom(2_000_000)
    floor = len(data) / rate_bytes(RATE)
    with Link(RATE, SUBNET) as link, S3Server(0, link.inner_ip, link.inside([])) as s3:
        assert link.ns in namespaces()
        assert s3.endpoint == f"http://{SUBNET}.2:{s3.port}"
        create_bucket(s3.endpoint, "bucket")
        store = open_store("s3://bucket/x", S3Settings(
            endpoint=s3.endpoint, region=REGION, path_style=True,
            access_key_file=tmp_path / "access", secret_key_file=tmp_path / "secret"))
        sent_before = link.tx()[0]
        started = time.monotonic()
        store.put_new("object", data)
        upload = time.monotonic() - started
        started = time.monotonic()
        assert read_all(store, "object") == data
        download = time.monotonic() - started
        # The upload left through the host's end of the pair, shaped by its qdisc; the
        # download came back through the namespace's end, shaped by its own.
        assert link.tx()[0] - sent_before >= len(data)
        assert upload >= 0.8 * floor, (upload, floor)
        assert download >= 0.8 * floor, (download, floor)
        # The server is in the namespace: nothing listens on the host's loopback at its port.
        probe = subprocess.run(["curl", "-s", "-o", "/dev/null", "--max-time", "5",
                                f"http://127.0.0.1:{s3.port}/"], check=False)
        assert probe.returncode == 7  # curl: failed to connect
    assert link.ns not in namespaces()
    assert not Path(f"/sys/class/net/{link.host_dev}").exists()
