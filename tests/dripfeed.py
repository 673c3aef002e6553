"""Slow clients for the clone donor's tests: each sends a plausible HELLO one byte at a time and
reconnects whenever the donor closes it, as an attacker holding the port would."""

from __future__ import annotations

import socket
import struct
import threading
import time
from types import TracebackType

HELLO = 1


class DripFeeders:
    def __init__(self, port: int, count: int, interval: float) -> None:
        self.port, self.count, self.interval = port, count, interval
        self.lifetimes: list[float] = []  # how long each closed connection lived
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._drip, daemon=True) for _ in range(count)]

    def _drip(self) -> None:
        hello = struct.pack(">BI", HELLO, 200) + b"{" * 200
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                    for byte in hello:
                        if self._stop.wait(self.interval):
                            return
                        sock.sendall(bytes([byte]))
            except OSError:
                pass
            self.lifetimes.append(time.monotonic() - started)

    def __enter__(self) -> DripFeeders:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
