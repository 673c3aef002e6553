"""`local checksum`: one consistency pass on the set's primary now, then every running pod's
result, as `mysqlsts checksum` does in a cluster (docs/sidecar.md, "Consistency check")."""

from __future__ import annotations

from mysqlsts.adapters.fs import read_secret
from mysqlsts.consistency import Pod, SetResult, check_set
from mysqlsts.errors import MysqlstsError
from mysqlsts.local.observe import observe
from mysqlsts.local.spec import SetLayout, SetSpec
from mysqlsts.options import SidecarOptions


def checksum(
    layout: SetLayout, spec: SetSpec, timeout: float, chunk_rows: int | None = None,
) -> SetResult:
    """The pods' sidecars run with the default options: the pass uses theirs."""
    pods = {pod.ordinal: pod for pod in observe(layout, spec).pods}
    primary = pods.get(0)
    if primary is None or not primary.alive:
        raise MysqlstsError(f"{spec.pod_name(0)} is not running in {layout.root}")
    replicas = [Pod(pod.name, pod.address.host, pod.address.mysql_port)
                for ordinal, pod in sorted(pods.items()) if ordinal > 0 and pod.alive]
    options = SidecarOptions()
    return check_set(
        Pod(primary.name, primary.address.host, primary.address.mysql_port), replicas,
        password=read_secret(layout.secret("root-password"), "root password"),
        database=options.heartbeat_database,
        chunk_rows=chunk_rows or options.consistency_chunk_rows,
        duty_cycle=options.consistency_duty_cycle, wait_timeout=timeout,
    )
