"""Probe and metrics benchmark (issue 3 §6): prints figures; not a test.

In one run, against the same MariaDB replica (with a primary whose sidecar writes heartbeats),
the replica's `mysqlsts sidecar` and Debian's `prometheus-mysqld-exporter` (default collectors,
credentials in a 0600 my.cnf passed by --config.my-cnf) are measured side by side:

  - RSS and CPU at idle: /proc/PID/status and /proc/PID/stat sampled over --idle seconds;
  - /metrics latency p50/p99 at 20 scrapes/s over one keep-alive connection, as Prometheus
    scrapes (--scrapes requests, paced);
  - /readyz p99 at 50 requests/s, a new connection per request, as the kubelet probes
    (sidecar only: the exporter has no readiness endpoint);
  - /readyz p50/p99/max during a connect flood on the sidecar's http port (--flood seconds,
    4 client processes connecting and closing as fast as they can), probed at 4/s.

Targets: /readyz p99 <= 10 ms; sidecar /metrics p99 <= exporter's; sidecar RSS <= 40 MiB;
/readyz under the flood: max < 100 ms (the kubelet's default probe timeout is 1 s).

Run: .venv/bin/python -m bench.probe_bench [--write-docs docs/benchmarks.md]
Loopback ports from the probe-bench share (tests/ports.py). Every process it starts is stopped
and its files removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.harness import LoadWatch, paced, percentile, publish, scratch
from tests.integration.probe_fixtures import (
    Ports,
    Secrets,
    Sidecar,
    bootstrap_template,
    have_mariadb,
    prepare_pod,
    wait_until,
)
from tests.ports import PortPool
from tests.servers import Server

EXPORTER = "prometheus-mysqld-exporter"
FLOODERS = 4
FLOOD_PROBE_RATE = 4.0  # /readyz per second during the flood
# One flooder: connect to the port and close at once, as fast as it can, for `seconds`; prints
# how many connects it made and how many failed.
FLOOD = """
import socket, sys, time
port, seconds = int(sys.argv[1]), float(sys.argv[2])
made = failed = 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        made += 1
    except OSError:
        failed += 1
print(made, failed)
"""
MIB = 1024 * 1024
HEADING = "## Sidecar probes and metrics"


# -- processes ---------------------------------------------------------------------------


def proc_sample(pid: int) -> tuple[int, float]:
    """(RSS bytes, CPU seconds used so far) of a process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return rss_kib * 1024, cpu


@dataclass
class Idle:
    rss_mean: float
    rss_max: float
    cpu_percent: float


def sample_idle(pids: dict[str, int], seconds: float) -> dict[str, Idle]:
    """Sample every process at once, every 0.5 s, for `seconds`."""
    rss: dict[str, list[int]] = {name: [] for name in pids}
    first = {name: proc_sample(pid)[1] for name, pid in pids.items()}
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for name, pid in pids.items():
            rss[name].append(proc_sample(pid)[0])
        time.sleep(0.5)
    wall = time.monotonic() - started
    return {
        name: Idle(statistics.fmean(rss[name]), max(rss[name]),
                   100 * (proc_sample(pid)[1] - first[name]) / wall)
        for name, pid in pids.items()
    }


class Exporter:
    def __init__(self, root: Path, server: Server, port: int) -> None:
        self.port = port
        cnf = root / "exporter.my.cnf"
        fd = os.open(cnf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(f"[client]\nuser=root\npassword={server.root_password}\n"
                      f"host=127.0.0.1\nport={server.port}\n")
        self.log = root / "exporter.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [EXPORTER, f"--config.my-cnf={cnf}", f"--web.listen-address=127.0.0.1:{port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


# -- load --------------------------------------------------------------------------------


def keepalive_getter(port: int, path: str) -> Callable[[], float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def get() -> float:
        started = time.perf_counter()
        conn.request("GET", path)
        reply = conn.getresponse()
        body = reply.read()
        took = time.perf_counter() - started
        if reply.status != 200 or not body:
            raise RuntimeError(f"GET :{port}{path} answered {reply.status}")
        return took

    return get


def fresh_getter(port: int, path: str, timeout: float = 10) -> Callable[[], float]:
    def get() -> float:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            reply = conn.getresponse()
            reply.read()
        finally:
            conn.close()
        took = time.perf_counter() - started
        if reply.status not in (200, 503):
            raise RuntimeError(f"GET :{port}{path} answered {reply.status}")
        return took

    return get


# -- the run -----------------------------------------------------------------------------


@dataclass
class Figures:
    idle: dict[str, Idle]
    metrics: dict[str, list[float]]
    readyz: list[float]
    metrics_bytes: dict[str, int]
    rss_after: dict[str, int]
    flood: Flood


@dataclass
class Flood:
    seconds: float
    connects: int
    failed: int  # connects refused or timed out
    readyz: list[float]  # probe latencies; a failed probe counts with the time it took to fail
    probe_errors: list[str]  # what each failed probe got


def flood(port: int, seconds: float) -> Flood:
    """/readyz probed at FLOOD_PROBE_RATE while FLOODERS processes connect and close."""
    flooders = [subprocess.Popen([sys.executable, "-c", FLOOD, str(port), str(seconds)],
                                 stdout=subprocess.PIPE, text=True) for _ in range(FLOODERS)]
    errors: list[str] = []
    probe = fresh_getter(port, "/readyz", timeout=10)

    def tolerant() -> float:
        started = time.perf_counter()
        try:
            return probe()
        except (OSError, RuntimeError, http.client.HTTPException) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            return time.perf_counter() - started

    try:
        time.sleep(1)  # the flood is on before the first probe
        latencies = paced(int((seconds - 2) * FLOOD_PROBE_RATE), FLOOD_PROBE_RATE, tolerant)
    finally:
        counts = [flooder.communicate(timeout=seconds + 60)[0].split() for flooder in flooders]
    return Flood(seconds, sum(int(c[0]) for c in counts), sum(int(c[1]) for c in counts),
                 latencies, errors)


def run(args: argparse.Namespace, root: Path, load: LoadWatch) -> Figures:
    pool = PortPool("probe-bench")
    first = pool.block(2 * 10)
    ports = Ports(mysql=first, clone=first + 1, http=first + 2, stride=10)
    exporter_port = pool.one()
    secrets = Secrets.create(root / "secrets")
    template = bootstrap_template(root, secrets)
    primary = prepare_pod(root, "mysql-0", ports.of(0)[0], secrets, template)
    replica = prepare_pod(root, "mysql-1", ports.of(1)[0], secrets, template)
    stoppable: list[Server | Sidecar | Exporter] = []
    try:
        for server in (primary, replica):
            server.start()
            stoppable.append(server)
        sidecars = []
        for pod, server in (("mysql-0", primary), ("mysql-1", replica)):
            env = {**secrets.env(), **ports.env(), "MYSQLSTS_POD_NAME": pod,
                   "MYSQLSTS_DATA_DIR": str(server.spec.data_dir),
                   "MYSQLSTS_LISTEN_ADDRESS": "127.0.0.1", "MYSQLSTS_NO_DONOR": "1",
                   # The pods' primary lease, a file both contend for (as in `mysqlsts local`).
                   "MYSQLSTS_PRIMARY_LEASE": f"file:{root / 'primary-lease.json'}"}
            sidecar = Sidecar(pod=pod, http_port=ports.of(int(pod[-1]))[2], env=env, args=[],
                              log_path=root / f"{pod}-sidecar.log")
            sidecar.start()
            stoppable.append(sidecar)
            sidecars.append(sidecar)
        target = sidecars[1]
        wait_until(lambda: target.get("/readyz").status == 200, 60, what="replica ready")
        exporter = Exporter(root, replica, exporter_port)
        stoppable.append(exporter)
        wait_until(lambda: b"mysql_up 1" in _get(exporter_port, "/metrics"), 30,
                   what="exporter up")
        assert target.process is not None
        pids = {"sidecar": target.process.pid, "exporter": exporter.process.pid}
        # Both have answered once (imports done, connections made); then leave them alone.
        time.sleep(2)
        print(f"idle sampling for {args.idle:.0f}s ...", file=sys.stderr)
        idle = sample_idle(pids, args.idle)
        endpoints = {"sidecar": target.http_port, "exporter": exporter_port}
        sizes = {name: len(_get(port, "/metrics")) for name, port in endpoints.items()}
        print(f"{args.scrapes} scrapes of /metrics at 20/s from each, interleaved ...",
              file=sys.stderr)
        # Interleaved, so whatever else the machine does weighs on both alike.
        getters = {name: keepalive_getter(port, "/metrics") for name, port in endpoints.items()}
        metrics: dict[str, list[float]] = {name: [] for name in endpoints}

        def both() -> float:
            for name, get in getters.items():
                metrics[name].append(get())
            return 0.0

        load.sample()
        paced(args.scrapes, 20, both)
        load.sample()
        print(f"sidecar: {args.probes} /readyz at 50/s ...", file=sys.stderr)
        readyz = paced(args.probes, 50, fresh_getter(target.http_port, "/readyz"))
        load.sample()
        rss_after = {name: proc_sample(pid)[0] for name, pid in pids.items()}
        print(f"sidecar: /readyz at {FLOOD_PROBE_RATE:.0f}/s during a {args.flood:.0f} s "
              f"connect flood by {FLOODERS} clients ...", file=sys.stderr)
        flooded = flood(target.http_port, args.flood)
        load.sample()
        return Figures(idle, metrics, readyz, sizes, rss_after, flooded)
    finally:
        for thing in reversed(stoppable):
            thing.stop()


def _get(port: int, path: str) -> bytes:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    except OSError:
        return b""
    finally:
        conn.close()


def report(figures: Figures, args: argparse.Namespace) -> list[str]:
    ms = 1000.0
    side, exp = "sidecar", "exporter"
    idle = figures.idle
    m = figures.metrics
    rows = [
        ("RSS at idle, mean (MiB)", idle[side].rss_mean / MIB, idle[exp].rss_mean / MIB),
        ("RSS after the load (MiB)", figures.rss_after[side] / MIB,
         figures.rss_after[exp] / MIB),
        ("CPU at idle (% of one core)", idle[side].cpu_percent, idle[exp].cpu_percent),
        ("/metrics p50 (ms)", percentile(m[side], 50) * ms, percentile(m[exp], 50) * ms),
        ("/metrics p99 (ms)", percentile(m[side], 99) * ms, percentile(m[exp], 99) * ms),
        ("/metrics max (ms)", max(m[side]) * ms, max(m[exp]) * ms),
        ("/metrics body (KiB)", figures.metrics_bytes[side] / 1024,
         figures.metrics_bytes[exp] / 1024),
    ]
    lines = [
        "| measure | mysqlsts sidecar | mysqld_exporter | sidecar / exporter |",
        "|---|---|---|---|",
    ]
    for label, a, b in rows:
        ratio = f"{a / b:.2f}" if b else "n/a"
        lines.append(f"| {label} | {a:.2f} | {b:.2f} | {ratio} |")
    readyz_p50 = percentile(figures.readyz, 50) * ms
    readyz_p99 = percentile(figures.readyz, 99) * ms
    lines.append(f"| /readyz p50 / p99 (ms), new connection each | {readyz_p50:.2f} / "
                 f"{readyz_p99:.2f} | (no such endpoint) | |")
    verdicts = [
        f"- /readyz p99 {readyz_p99:.2f} ms (target <= 10 ms): "
        f"{'met' if readyz_p99 <= 10 else 'MISSED'}",
        f"- /metrics p99 {percentile(m[side], 99) * ms:.2f} ms vs exporter's "
        f"{percentile(m[exp], 99) * ms:.2f} ms (target: no worse): "
        f"{'met' if percentile(m[side], 99) <= percentile(m[exp], 99) else 'MISSED'}",
        f"- sidecar RSS {max(idle[side].rss_max, figures.rss_after[side]) / MIB:.1f} MiB "
        f"(target <= 40 MiB): "
        f"{'met' if max(idle[side].rss_max, figures.rss_after[side]) <= 40 * MIB else 'MISSED'}",
    ]
    fl = figures.flood
    slow = sum(1 for took in fl.readyz if took > 0.1)
    flood_lines = [
        f"**/readyz during a connect flood**: {FLOODERS} client processes connecting to the "
        f"sidecar's http port and closing at once, for {fl.seconds:.0f} s "
        f"({fl.connects} connects, {fl.failed} refused or timed out), on the same 2 cores; "
        f"meanwhile {len(fl.readyz)} `/readyz` probes at {FLOOD_PROBE_RATE:.0f}/s, a new "
        "connection each.",
        "",
        "| probes | p50 | p99 | max | over 100 ms | over 1 s | failed |",
        "|---|---|---|---|---|---|---|",
        f"| {len(fl.readyz)} | {percentile(fl.readyz, 50) * ms:.2f} ms | "
        f"{percentile(fl.readyz, 99) * ms:.2f} ms | {max(fl.readyz) * ms:.2f} ms | {slow} | "
        f"{sum(1 for took in fl.readyz if took > 1)} | {len(fl.probe_errors)} |",
    ]
    if fl.probe_errors:
        kinds = sorted(set(fl.probe_errors))
        flood_lines += ["", "Failed probes got: " + "; ".join(
            f"{kind} ({fl.probe_errors.count(kind)}x)" for kind in kinds) + "."]
    verdicts.append(f"- /readyz max under the connect flood {max(fl.readyz) * ms:.2f} ms "
                    f"(target < 100 ms): {'met' if max(fl.readyz) < 0.1 else 'MISSED'}")
    method = (
        f"One replica (mariadbd, with a primary and its heartbeat-writing sidecar), measured by "
        f"its sidecar and by `{EXPORTER}` with its default collectors. Idle sampled over "
        f"{args.idle:.0f} s. {args.scrapes} `/metrics` scrapes of each at 20/s, interleaved, "
        f"each over one keep-alive connection (as Prometheus). Then {args.probes} `/readyz` at "
        "50/s, a new connection each (as the kubelet). The load generator runs on the same "
        "machine. Percentiles are nearest-rank (bench/harness.py). `bench/probe_bench.py`."
    )
    return [method, "", *lines, "", *flood_lines, "", *verdicts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=10.0, help="idle sampling seconds")
    parser.add_argument("--scrapes", type=int, default=400, help="/metrics requests per target")
    parser.add_argument("--probes", type=int, default=500, help="/readyz requests")
    parser.add_argument("--flood", type=float, default=30.0,
                        help="seconds of connect flood while /readyz is probed")
    parser.add_argument("--write-docs", type=Path, default=None)
    args = parser.parse_args()
    if not have_mariadb() or shutil.which(EXPORTER) is None:
        raise SystemExit(f"probe_bench: needs mariadbd and {EXPORTER} (scripts/setup-host test)")
    root = scratch("mysqlsts-probe-bench-")
    load = LoadWatch()
    try:
        lines = report(run(args, root, load), args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    publish("\n".join(lines), section="probe-bench", heading=HEADING, load=load,
            write_docs=args.write_docs, tools=[[EXPORTER, "--version"]])


if __name__ == "__main__":
    main()
