"""Which server config a pod gets, and the per-pod `server-id.cnf`."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from mysqlsts.core.identity import Identity, Role

# In order of preference: the Kubernetes example's names first, then those of later versions.
ROLE_CNF_NAMES: dict[Role, tuple[str, ...]] = {
    Role.PRIMARY: ("master.cnf", "primary.cnf"),
    Role.REPLICA: ("slave.cnf", "secondary.cnf", "replica.cnf"),
}
SERVER_ID_CNF = "server-id.cnf"


def choose_role_cnf(role: Role, available: Collection[str]) -> str | None:
    """The ConfigMap file for `role`, or None when the ConfigMap has none of its names."""
    return next((name for name in ROLE_CNF_NAMES[role] if name in available), None)


def stale_role_cnfs(chosen: str) -> list[str]:
    """Role files a previous run (or another role) may have left that must not stay beside
    `chosen`: two role files in conf.d would both be read by the server."""
    every = [name for names in ROLE_CNF_NAMES.values() for name in names]
    return [name for name in every if name != chosen]


def render_server_id_cnf(identity: Identity) -> str:
    """server_id and report_host, and read_only=ON whatever the role cnf says (this file sorts
    after master.cnf and primary.cnf, so it wins): every server starts read-only, and only the
    primary's sidecar makes it writable (under the primary lease, or at set-up with
    --primary-lease none). MySQL's super_read_only is in its role cnf (MariaDB has none)."""
    return (
        "# Written by mysqlsts init; regenerated on every pod start.\n"
        "[mysqld]\n"
        f"server_id={identity.server_id}\n"
        f"report_host={identity.report_host}\n"
        "# Every server starts read-only; the primary's sidecar lifts it (docs/takeover.md).\n"
        "read_only=ON\n"
    )


# --- innodb_buffer_pool_size from the server container's memory limit -------------------------

MEMORY_CNF = "buffer-pool.cnf"  # sorts before the role cnf, so a value set there wins
MiB = 1024 * 1024
GiB = 1024 * MiB
# InnoDB sizes its buffer pool in chunks of 128 MiB (MySQL's default chunk size; MariaDB 10.11
# rounds likewise) and rounds a size that is no multiple *up*: rounding down ourselves keeps the
# pool inside the share of the limit we chose.
POOL_CHUNK = 128 * MiB
# Below this a pool is not worth shrinking further: the server's other buffers dominate.
POOL_FLOOR = 32 * MiB
_QUANTITY_SUFFIXES = {
    "": 1, "k": 1000, "M": 1000**2, "G": 1000**3, "T": 1000**4,
    "Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "Ti": 1024**4,
}
_QUANTITY = re.compile(r"^\s*(\d+)\s*(|k|M|G|T|Ki|Mi|Gi|Ti)\s*$")


def parse_memory_quantity(text: str) -> int:
    """Bytes from a Kubernetes memory quantity: what the downward API gives (`2147483648`, with
    the default divisor 1) or what a person writes (`2Gi`, `512M`). ValueError otherwise."""
    match = _QUANTITY.match(text)
    if match is None:
        raise ValueError(f"not a memory quantity: {text!r} (e.g. 2147483648, 2Gi, 512Mi)")
    return int(match.group(1)) * _QUANTITY_SUFFIXES[match.group(2)]


@dataclass(frozen=True)
class BufferPool:
    size: int  # bytes
    instances: int | None  # MySQL only; MariaDB 10.11 has a single pool and no such variable


def buffer_pool_for(memory_limit: int, percent: int, flavor: str) -> BufferPool:
    """`percent` of the server container's memory limit for InnoDB's buffer pool.

    The rest of the limit is left to connections, sort and join buffers and the server itself.
    MySQL splits a pool of 1 GiB or more into 8 instances by default and rounds the size up to a
    multiple of chunk x instances (1152 MiB would become 2 GiB, over the limit): there we choose
    one instance per GiB, at most 8, and round to that multiple.
    """
    wanted = memory_limit * percent // 100
    if wanted < POOL_CHUNK:
        return BufferPool(max(POOL_FLOOR, wanted // MiB * MiB), 1 if flavor == "mysql" else None)
    if flavor != "mysql":
        return BufferPool(wanted // POOL_CHUNK * POOL_CHUNK, None)
    instances = max(1, min(8, wanted // GiB))
    step = POOL_CHUNK * instances
    return BufferPool(wanted // step * step, instances)


@dataclass(frozen=True)
class ServerMemory:
    limit: int  # bytes: the server container's limits.memory
    buffer_pool_percent: int
    flavor: str


def render_memory_cnf(memory: ServerMemory) -> str:
    pool = buffer_pool_for(memory.limit, memory.buffer_pool_percent, memory.flavor)
    lines = [
        "# Written by mysqlsts init from the server container's memory limit "
        f"({memory.limit // MiB} MiB x {memory.buffer_pool_percent} %); regenerated on every "
        "pod start.",
        "# Set innodb_buffer_pool_size in the role cnf (ConfigMap) to override it.",
        "[mysqld]",
        f"innodb_buffer_pool_size={pool.size}",
    ]
    if pool.instances is not None:
        lines.append(f"innodb_buffer_pool_instances={pool.instances}")
    return "\n".join(lines) + "\n"
