"""What one machine can hold: a set's new pods against its free memory and disk. Pure.

The figures are what one idle pod of a local set takes (measured on MariaDB 10.11 with the
local cnf: a 64 MiB buffer pool and a 48 MiB redo log), rounded up: a set that does not fit
would fail later, one pod at a time, in a swapping or full machine.
"""

from __future__ import annotations

MIB = 2**20
# mariadbd (100-190 MiB resident) + the sidecar (~35 MiB) + the pod process (~26 MiB).
POD_MEMORY_BYTES = 256 * MIB
# A data dir (~80 MiB: redo log, system tablespace, binary logs) before it holds much data.
POD_DISK_BYTES = 256 * MIB


def capacity_problem(new_pods: int, new_data_dirs: int, memory_available: int,
                     disk_free: int) -> str | None:
    """Why the machine cannot hold `new_pods` more pods (of which `new_data_dirs` need a data
    dir), or None when it can."""
    memory = new_pods * POD_MEMORY_BYTES
    if memory > memory_available:
        return (f"{new_pods} more pod(s) need about {memory // MIB} MiB of memory; "
                f"{memory_available // MIB} MiB are available")
    disk = new_data_dirs * POD_DISK_BYTES
    if disk > disk_free:
        return (f"{new_data_dirs} new data dir(s) need about {disk // MIB} MiB of disk; "
                f"{disk_free // MIB} MiB are free")
    return None
