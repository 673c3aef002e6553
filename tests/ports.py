"""Loopback ports for tests: each suite's share, and free ports within it.

Every share lies below the kernel's ephemeral range (Linux: 32768-60999): a listening port inside
that range can be taken at any moment by the local end of some outgoing connection, and a
server then fails with "address already in use".
"""

from __future__ import annotations

import os
import socket

EPHEMERAL_FLOOR = 32768

SHARES: dict[str, range] = {
    "manifests": range(19000, 19500),  # the live dashboard checks' local set and Prometheus
    "clone": range(20000, 20900),
    "clone-unit": range(20900, 21000),
    "sidecar": range(21000, 21900),
    "sidecar-unit": range(21900, 22000),
    "local": range(22000, 23000),  # tests/localset.py blocks of 50
    "probes": range(23000, 23500),
    "probe-bench": range(23500, 23600),
    "consistency-bench": range(23600, 23700),  # bench/consistency_bench.py's local set
    "scale-bench": range(23700, 23800),  # bench/scale_bench.py: a donor and a local set
    "proxy-unit": range(23900, 24000),
    "store": range(24000, 24200),  # the moto S3 server and fault proxies (tests/s3server.py)
    "store-local": range(24200, 24300),  # test_backup_local_set.py's local set: blocks of 50
}


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Nobody listens on `port`; a previous run's connections in TIME_WAIT do not count, as
    servers bind with SO_REUSEADDR."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


class PortPool:
    """Hands out free ports of one share, each at most once per pool.

    The starting point depends on the pid, so two test runs at once mostly pick apart.
    """

    def __init__(self, share: str) -> None:
        self.ports = SHARES[share]
        self._next = self.ports.start + (os.getpid() * 10) % len(self.ports)

    def _advance(self, size: int) -> int:
        start = self._next
        if start + size > self.ports.stop:
            start = self.ports.start
        self._next = start + size
        return start

    def block(self, size: int) -> int:
        """The first of `size` consecutive free ports (a set's port stride)."""
        for _ in range(len(self.ports) // size + 1):
            start = self._advance(size)
            if all(port_is_free(port) for port in range(start, start + size)):
                return start
        raise RuntimeError(f"no {size} free consecutive ports in {self.ports}")

    def one(self) -> int:
        return self.block(1)

    __call__ = one
