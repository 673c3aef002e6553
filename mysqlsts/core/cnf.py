"""Which server config a pod gets, and the per-pod `server-id.cnf`."""

from __future__ import annotations

from collections.abc import Collection

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
    return (
        "# Written by mysqlsts init; regenerated on every pod start.\n"
        "[mysqld]\n"
        f"server_id={identity.server_id}\n"
        f"report_host={identity.report_host}\n"
    )
