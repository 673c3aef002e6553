"""`local checksum`: one consistency pass on the set's primary now, then every running pod's
result, as `mysqlsts checksum` does in a cluster (docs/sidecar.md, "Consistency check")."""

from __future__ import annotations

from dataclasses import replace

from mysqlsts.adapters.fs import read_secret
from mysqlsts.consistency.on_demand import SetResult, check_set
from mysqlsts.errors import MysqlstsError
from mysqlsts.local import control
from mysqlsts.local.spec import SetLayout, SetSpec
from mysqlsts.options import ConsistencyOptions, HeartbeatOptions


def checksum(
    layout: SetLayout, spec: SetSpec, timeout: float, chunk_rows: int | None = None,
) -> SetResult:
    """The pods' sidecars run with the default options: the pass uses theirs."""
    alive = {pod["ordinal"] for pod in control.observe(layout, spec)["pods"] if pod["alive"]}
    if 0 not in alive:
        raise MysqlstsError(f"{spec.pod_name(0)} is not running in {layout.root}")
    peers = spec.peers()
    options = ConsistencyOptions()
    if chunk_rows is not None:
        options = replace(options, consistency_chunk_rows=chunk_rows)
    return check_set(
        spec.statefulset, peers.address(0),
        [peers.address(n) for n in sorted(alive) if n > 0],
        password=read_secret(layout.secret("root-password"), "root password"),
        database=HeartbeatOptions().heartbeat_database, options=options, wait_timeout=timeout,
    )
