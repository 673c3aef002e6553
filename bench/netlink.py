"""An emulated network link for the benches that need one (link_bench, backup_bench). Needs root.

A veth pair whose inner end lives in a network namespace made for the run
(`mysqlsts-bench-<pid>`), addressed SUBNET.1 (the host's end) and SUBNET.2 (the namespace's),
with a `tc tbf` rate limit on both ends: what the host sends to the namespace is limited by its
end's qdisc, what comes back by the inner end's. tbf, not netem: this kernel has no sch_netem,
so no delay is added (the RTT is a veth pair's, tens of microseconds). A process started with
`Link.inside(argv)` runs in the namespace, so every byte between it and the host crosses the
limited link. `close()` removes the namespace and the pair; the benches call it in `finally`.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

# tc's rate units (tc(8) "RATES"): bit or bps (bytes), with an SI (k, m, g, t) or IEC (ki,
# mi, gi, ti) prefix. A bare number is left out on purpose: tc reads it as bits, people as bytes.
_RATE = re.compile(r"(\d+(?:\.\d+)?)([kmgt]i?)?(bit|bps)")
_PREFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12,
           "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def rate_bytes(rate: str) -> float:
    """Bytes per second of a tc rate ("1gbit" -> 125e6); ValueError if tc would not read it so."""
    found = _RATE.fullmatch(rate.strip().lower())
    if found is None:
        raise ValueError(f"not a tc rate (e.g. 1gbit, 500mbit, 100mbps): {rate!r}")
    value = float(found[1]) * _PREFIX[found[2] or ""]
    return value / 8 if found[3] == "bit" else value


class Link:
    """The namespace, the veth pair and the rate limit; `close()` removes them."""

    def __init__(self, rate: str, subnet: str) -> None:
        self.ns = f"mysqlsts-bench-{os.getpid()}"
        self.host_ip, self.inner_ip = f"{subnet}.1", f"{subnet}.2"
        host, inner = f"mbd{os.getpid()}", f"mbr{os.getpid()}"
        self.host_dev = host
        self.rate = rate_bytes(rate)  # bytes per second each way
        self._created = False
        shape = ["root", "tbf", "rate", rate, "burst", "256kb", "latency", "20ms"]
        steps = [
            ["ip", "netns", "add", self.ns],
            ["ip", "link", "add", host, "type", "veth", "peer", "name", inner],
            ["ip", "link", "set", inner, "netns", self.ns],
            ["ip", "addr", "add", f"{self.host_ip}/24", "dev", host],
            ["ip", "link", "set", host, "up"],
            ["ip", "-n", self.ns, "addr", "add", f"{self.inner_ip}/24", "dev", inner],
            ["ip", "-n", self.ns, "link", "set", inner, "up"],
            ["ip", "-n", self.ns, "link", "set", "lo", "up"],
            ["tc", "qdisc", "add", "dev", host, *shape],
            ["tc", "-n", self.ns, "qdisc", "add", "dev", inner, *shape],
        ]
        try:
            for step in steps:
                subprocess.run(step, check=True, capture_output=True, text=True)
                self._created = True
        except subprocess.CalledProcessError as exc:
            self.close()
            raise SystemExit(f"bench: {' '.join(exc.cmd)} failed: {exc.stderr.strip()}") \
                from None

    def inside(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def tx(self) -> tuple[int, int]:
        """Bytes and packets (skbs) the host side has put on the link."""
        stats = Path(f"/sys/class/net/{self.host_dev}/statistics")
        return int((stats / "tx_bytes").read_text()), int((stats / "tx_packets").read_text())

    def close(self) -> None:
        if self._created:
            # Deleting the namespace deletes its veth end, and with it the pair.
            subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
            subprocess.run(["ip", "link", "del", self.host_dev], capture_output=True)
            self._created = False

    def __enter__(self) -> Link:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Readings:
    """`(clock(), read())` every `interval` seconds while the `with` lasts, and one on entering
    and one on leaving it, in `samples` (a thread of the bench's; e.g. a link's counters)."""

    def __init__(self, read: Callable[[], int], interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.samples: list[tuple[float, int]] = []
        self._read, self._interval, self._clock = read, interval, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _take(self) -> None:
        self.samples.append((self._clock(), self._read()))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._take()
            self._stop.wait(self._interval)

    def __enter__(self) -> Self:
        self._take()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()
