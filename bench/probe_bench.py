"""Probe and metrics benchmark (issue 3 §6): prints figures; not a test.

In one run, against the same MariaDB replica (with a primary whose sidecar writes heartbeats),
the replica's `mysqlsts sidecar` and Debian's `prometheus-mysqld-exporter` (default collectors,
credentials in a 0600 my.cnf passed by --config.my-cnf) are measured side by side:

  - RSS and CPU at idle: /proc/PID/status and /proc/PID/stat sampled over --idle seconds;
  - /metrics latency p50/p99 at 20 scrapes/s over one keep-alive connection, as Prometheus
    scrapes (--scrapes requests, paced);
  - /readyz p99 at 50 requests/s, a new connection per request, as the kubelet probes
    (sidecar only: the exporter has no readiness endpoint).

Targets: /readyz p99 <= 10 ms; sidecar /metrics p99 <= exporter's; sidecar RSS <= 40 MiB.

Run: .venv/bin/python bench/probe_bench.py [--write-docs docs/benchmarks.md]
Loopback ports 23500-23599. Every process it starts is stopped and its files removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "integration"), str(REPO / "tests")]

from clone_bench import write_section  # noqa: E402
from ports import port_is_free  # noqa: E402
from probe_fixtures import (  # noqa: E402
    Ports,
    Secrets,
    Server,
    Sidecar,
    bootstrap_template,
    have_mariadb,
    prepare_pod,
    wait_until,
)

PORT_FIRST = 23500
EXPORTER_PORT = 23590
EXPORTER = "prometheus-mysqld-exporter"
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


def paced(count: int, rate: float, request: Callable[[], float]) -> list[float]:
    """`count` requests at `rate` per second (open loop: a slow answer does not delay the
    schedule); the latency of each in seconds."""
    latencies = []
    started = time.perf_counter()
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        latencies.append(request())
    return latencies


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


def fresh_getter(port: int, path: str) -> Callable[[], float]:
    def get() -> float:
        started = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
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


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# -- the machine -------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    mem_kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())
                  .group(1))  # type: ignore[union-attr]

    def version(argv: list[str]) -> str:
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        return ((out.stdout or out.stderr).strip().splitlines() or ["unknown"])[0]

    import prometheus_client
    try:
        from importlib.metadata import version as dist_version
        client = dist_version("prometheus-client")
    except Exception:  # noqa: BLE001 (only a label)
        client = getattr(prometheus_client, "__version__", "unknown")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores; memory {mem_kib / MIB:.0f} GiB",
        f"- Kernel {platform.release()}; Python {platform.python_version()}; "
        f"prometheus-client {client}",
        f"- Server: {version(['mariadbd', '--version'])}",
        f"- Exporter: {version([EXPORTER, '--version'])}",
    ]


# -- the run -----------------------------------------------------------------------------


@dataclass
class Figures:
    idle: dict[str, Idle]
    metrics: dict[str, list[float]]
    readyz: list[float]
    metrics_bytes: dict[str, int]
    rss_after: dict[str, int]
    loads: list[float]  # 1-minute load average around the load phases (a shared machine)


def run(args: argparse.Namespace, root: Path) -> Figures:
    ports = Ports(mysql=PORT_FIRST, clone=PORT_FIRST + 1, http=PORT_FIRST + 2, stride=10)
    needed = [*ports.of(0), *ports.of(1), EXPORTER_PORT]
    busy = [p for p in needed if not port_is_free(p)]
    if busy:
        raise SystemExit(f"probe_bench: ports in use: {busy}")
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
                   "MYSQLSTS_LISTEN_ADDRESS": "127.0.0.1", "MYSQLSTS_NO_DONOR": "1"}
            sidecar = Sidecar(pod=pod, http_port=ports.of(int(pod[-1]))[2], env=env, args=[],
                              log_path=root / f"{pod}-sidecar.log")
            sidecar.start()
            stoppable.append(sidecar)
            sidecars.append(sidecar)
        target = sidecars[1]
        wait_until(lambda: target.get("/readyz").status == 200, 60, what="replica ready")
        exporter = Exporter(root, replica, EXPORTER_PORT)
        stoppable.append(exporter)
        wait_until(lambda: b"mysql_up 1" in _get(EXPORTER_PORT, "/metrics"), 30,
                   what="exporter up")
        assert target.process is not None
        pids = {"sidecar": target.process.pid, "exporter": exporter.process.pid}
        # Both have answered once (imports done, connections made); then leave them alone.
        time.sleep(2)
        print(f"idle sampling for {args.idle:.0f}s ...", file=sys.stderr)
        idle = sample_idle(pids, args.idle)
        endpoints = {"sidecar": target.http_port, "exporter": EXPORTER_PORT}
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

        loads = [os.getloadavg()[0]]
        paced(args.scrapes, 20, both)
        loads.append(os.getloadavg()[0])
        print(f"sidecar: {args.probes} /readyz at 50/s ...", file=sys.stderr)
        readyz = paced(args.probes, 50, fresh_getter(target.http_port, "/readyz"))
        loads.append(os.getloadavg()[0])
        rss_after = {name: proc_sample(pid)[0] for name, pid in pids.items()}
        return Figures(idle, metrics, readyz, sizes, rss_after, loads)
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
        ("/metrics p50 (ms)", pct(m[side], 50) * ms, pct(m[exp], 50) * ms),
        ("/metrics p99 (ms)", pct(m[side], 99) * ms, pct(m[exp], 99) * ms),
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
    readyz_p50, readyz_p99 = pct(figures.readyz, 50) * ms, pct(figures.readyz, 99) * ms
    lines.append(f"| /readyz p50 / p99 (ms), new connection each | {readyz_p50:.2f} / "
                 f"{readyz_p99:.2f} | (no such endpoint) | |")
    verdicts = [
        f"- /readyz p99 {readyz_p99:.2f} ms (target <= 10 ms): "
        f"{'met' if readyz_p99 <= 10 else 'MISSED'}",
        f"- /metrics p99 {pct(m[side], 99) * ms:.2f} ms vs exporter's "
        f"{pct(m[exp], 99) * ms:.2f} ms (target: no worse): "
        f"{'met' if pct(m[side], 99) <= pct(m[exp], 99) else 'MISSED'}",
        f"- sidecar RSS {max(idle[side].rss_max, figures.rss_after[side]) / MIB:.1f} MiB "
        f"(target <= 40 MiB): "
        f"{'met' if max(idle[side].rss_max, figures.rss_after[side]) <= 40 * MIB else 'MISSED'}",
    ]
    loads = ", ".join(f"{load:.2f}" for load in figures.loads)
    method = (
        f"One replica (mariadbd, with a primary and its heartbeat-writing sidecar), measured by "
        f"its sidecar and by `{EXPORTER}` with its default collectors. Idle sampled over "
        f"{args.idle:.0f} s. {args.scrapes} `/metrics` scrapes of each at 20/s, interleaved, "
        f"each over one keep-alive connection (as Prometheus). Then {args.probes} `/readyz` at "
        "50/s, a new connection each (as the kubelet). The load generator runs on the same "
        f"machine; its 1-minute load average during the run: {loads}. "
        "`bench/probe_bench.py`."
    )
    return ["Machine:", "", *machine(), "", method, "", *lines, "", *verdicts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=10.0, help="idle sampling seconds")
    parser.add_argument("--scrapes", type=int, default=400, help="/metrics requests per target")
    parser.add_argument("--probes", type=int, default=500, help="/readyz requests")
    parser.add_argument("--write-docs", type=Path, default=None)
    args = parser.parse_args()
    if not have_mariadb() or shutil.which(EXPORTER) is None:
        raise SystemExit(f"probe_bench: needs mariadbd and {EXPORTER} (scripts/setup-host test)")
    root = Path(tempfile.mkdtemp(prefix="mysqlsts-probe-bench-"))
    try:
        lines = report(run(args, root), args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print("\n".join(lines))
    if args.write_docs is not None:
        write_section(args.write_docs, "probe-bench", HEADING, "\n".join(lines))


if __name__ == "__main__":
    main()
