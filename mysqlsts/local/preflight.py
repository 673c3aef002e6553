"""Before a supervisor creates pods: their ports are free and the machine has room for them.
Pods still running from an earlier supervisor are adopted, not created, so they are left out."""

from __future__ import annotations

import shutil
from pathlib import Path

from mysqlsts.errors import ConfigError
from mysqlsts.local.capacity import capacity_problem
from mysqlsts.local.procs import ports_in_use, running_pods
from mysqlsts.local.spec import HOST, SetLayout, SetSpec


def check_ports(layout: SetLayout, spec: SetSpec) -> None:
    """The ports of every pod the supervisor will create are free."""
    running = running_pods(layout)
    peers = spec.peers()
    wanted = [port for o in range(spec.replicas) if o not in running
              for port in (peers.address(o).mysql_port, peers.address(o).clone_port,
                           peers.address(o).http_port)]
    taken = ports_in_use(HOST, wanted)
    if taken:
        raise ConfigError(
            f"port(s) {taken} on {HOST} are in use by another process; choose another --base-port"
        )


def check_capacity(layout: SetLayout, spec: SetSpec) -> None:
    """Before asking for more pods: the machine has the memory and disk they will take."""
    running = running_pods(layout)
    new_pods = [o for o in range(spec.replicas) if o not in running]
    new_data_dirs = [o for o in new_pods if not layout.pod(spec.pod_name(o)).data.exists()]
    problem = capacity_problem(len(new_pods), len(new_data_dirs), _memory_available(),
                               shutil.disk_usage(_existing_ancestor(layout.root)).free)
    if problem:
        raise ConfigError(f"{spec.replicas} replicas do not fit on this machine: {problem}")


def _memory_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 2**62  # unknown: do not refuse on a guess


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
