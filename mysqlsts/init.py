"""`mysqlsts init`: give the pod its server config for its role and its server-id."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mysqlsts.adapters.fs import atomic_write
from mysqlsts.core.cnf import (
    MEMORY_CNF,
    ROLE_CNF_NAMES,
    SERVER_ID_CNF,
    ServerMemory,
    choose_role_cnf,
    render_memory_cnf,
    render_server_id_cnf,
    stale_role_cnfs,
)
from mysqlsts.core.identity import Identity
from mysqlsts.errors import ConfigError


@dataclass(frozen=True)
class InitResult:
    role_cnf: Path
    server_id_cnf: Path
    memory_cnf: Path | None


def run_init(
    identity: Identity, config_map_dir: Path, conf_dir: Path, memory: ServerMemory | None = None
) -> InitResult:
    """Copy the role's cnf from the ConfigMap mount and write server-id.cnf into conf_dir,
    and the buffer pool's size when the server's memory limit is known (else no such file).

    Safe to re-run at any point: every write is atomic and the outcome depends only on inputs.
    """
    try:
        available = set(os.listdir(config_map_dir))
    except OSError as exc:
        raise ConfigError(f"cannot read config dir {config_map_dir}: {exc.strerror}") from exc
    chosen = choose_role_cnf(identity.role, available)
    if chosen is None:
        wanted = " or ".join(ROLE_CNF_NAMES[identity.role])
        raise ConfigError(f"config dir {config_map_dir} has no {wanted} for a {identity.role}")
    try:
        content = (config_map_dir / chosen).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {config_map_dir / chosen}: {exc.strerror}") from exc

    try:
        conf_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(conf_dir / chosen, content)
        atomic_write(conf_dir / SERVER_ID_CNF, render_server_id_cnf(identity))
        for stale in stale_role_cnfs(chosen):
            (conf_dir / stale).unlink(missing_ok=True)
        if memory is None:
            (conf_dir / MEMORY_CNF).unlink(missing_ok=True)
        else:
            atomic_write(conf_dir / MEMORY_CNF, render_memory_cnf(memory))
    except OSError as exc:
        raise ConfigError(f"cannot write to conf dir {conf_dir}: {exc.strerror}") from exc
    memory_cnf = None if memory is None else conf_dir / MEMORY_CNF
    return InitResult(conf_dir / chosen, conf_dir / SERVER_ID_CNF, memory_cnf)
