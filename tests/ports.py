"""Loopback ports for tests and benches: each suite's share, and free ports within it.

Every share lies below the kernel's ephemeral range (Linux: 32768-60999): a listening port inside
that range can be taken at any moment by the local end of some outgoing connection, and a
server then fails with "address already in use".

A port handed out is also reserved (an flock on a file per port, held until released or until
the process exits), so pytest-xdist workers and other test runs on this machine never pick the
same port between "it is free" and the server's bind.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EPHEMERAL_FLOOR = 32768

SHARES: dict[str, range] = {
    "manifests": range(19000, 19500),  # the live dashboard checks' local set and Prometheus
    "clone": range(20000, 20900),
    "clone-unit": range(20900, 21000),
    "sidecar": range(21000, 21900),
    "sidecar-unit": range(21900, 22000),
    "local": range(22000, 23000),  # local sets (tests/localset.py), blocks of LOCAL_SET_SPAN
    "probes": range(23000, 23500),
    "probe-bench": range(23500, 23600),
    "consistency-bench": range(23600, 23700),  # bench/consistency_bench.py's local set
    "scale-bench": range(23700, 23800),  # bench/scale_bench.py: a donor and a local set
    "clone-bench": range(23800, 23900),  # bench/clone_bench.py and bench/link_bench.py
    "proxy-unit": range(23900, 24000),
    "store": range(24000, 24200),  # the moto S3 server and fault proxies (tests/s3server.py)
    "store-local": range(24200, 24300),  # test_backup_local_set.py's local set: blocks of 50
    "api": range(24300, 24400),  # tests/api: ports nothing listens on (a stopped server)
}

LOCKS = Path(tempfile.gettempdir()) / "mysqlsts-test-ports"


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


def _lock(port: int) -> int | None:
    """The descriptor holding the lock of `port`, or None when another pool (of any process)
    holds it."""
    LOCKS.mkdir(exist_ok=True)
    fd = os.open(LOCKS / f"{port}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _unlock_all(held: dict[int, int]) -> None:
    for fd in held.values():
        os.close(fd)
    held.clear()


class PortPool:
    """Hands out free ports of one share, each reserved until `release` (or process exit).

    The starting point depends on the pid, so two test runs at once mostly start apart; the
    reservations make sure they never overlap.
    """

    def __init__(self, share: str) -> None:
        self.ports = SHARES[share]
        self._next = self.ports.start + (os.getpid() * 10) % len(self.ports)
        self._held: dict[int, int] = {}  # port: the descriptor holding its lock
        weakref.finalize(self, _unlock_all, self._held)

    def _advance(self, size: int) -> int:
        start = self._next
        if start + size > self.ports.stop:
            start = self.ports.start
        self._next = start + size
        return start

    def _reserve(self, start: int, size: int) -> bool:
        taken: dict[int, int] = {}
        for port in range(start, start + size):
            fd = None if port in self._held else _lock(port)
            if fd is None or not port_is_free(port):
                _unlock_all(taken)
                if fd is not None:
                    os.close(fd)
                return False
            taken[port] = fd
        self._held.update(taken)
        return True

    def block(self, size: int) -> int:
        """The first of `size` consecutive free ports (a set's port stride), reserved."""
        for _ in range(2):
            for _ in range(len(self.ports) // size + 1):
                start = self._advance(size)
                if self._reserve(start, size):
                    return start
            # A whole round found none: take back this pool's reservations that nobody listens
            # on any more (handed out long ago, their servers gone), then go round once more.
            for port in [port for port in self._held if port_is_free(port)]:
                self.release(port)
        raise RuntimeError(f"no {size} free consecutive ports in {self.ports}")

    def one(self) -> int:
        return self.block(1)

    __call__ = one

    def release(self, start: int, size: int = 1) -> None:
        """Give ports back, so a long session does not run out of its share."""
        for port in range(start, start + size):
            fd = self._held.pop(port, None)
            if fd is not None:
                os.close(fd)

    @contextmanager
    def reserved(self, size: int) -> Iterator[int]:
        """A block of `size` ports for the duration of a `with`."""
        start = self.block(size)
        try:
            yield start
        finally:
            self.release(start, size)
