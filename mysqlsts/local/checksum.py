"""`local checksum`: one consistency pass on the set's primary now, then every running pod's
result, as `mysqlsts checksum` does in a cluster (docs/sidecar.md, "Consistency check")."""

from __future__ import annotations

from dataclasses import replace

from mysqlsts.adapters.fs import read_secret
from mysqlsts.consistency.on_demand import SetResult, check_set
from mysqlsts.errors import MysqlstsError
from mysqlsts.local.observe import observe
from mysqlsts.local.spec import SetLayout, SetSpec
from mysqlsts.options import ConsistencyOptions, HeartbeatOptions


def checksum(
    layout: SetLayout, spec: SetSpec, timeout: float, chunk_rows: int | None = None,
) -> SetResult:
    """The pods' sidecars run with the default options: the pass uses theirs."""
    alive = {pod.ordinal: pod for pod in observe(layout, spec).pods if pod.alive}
    if 0 not in alive:
        raise MysqlstsError(f"{spec.pod_name(0)} is not running in {layout.root}")
    options = ConsistencyOptions()
    if chunk_rows is not None:
        options = replace(options, consistency_chunk_rows=chunk_rows)
    return check_set(
        spec.statefulset, alive[0].address,
        [pod.address for ordinal, pod in sorted(alive.items()) if ordinal > 0],
        password=read_secret(layout.secret("root-password"), "root password"),
        database=HeartbeatOptions().heartbeat_database, options=options, wait_timeout=timeout,
    )
