"""A live look at a set for `local status` and `local checksum`: pod records, process
liveness and readiness probes, as typed views."""

from __future__ import annotations

import time

from mysqlsts.adapters.readyz import Readiness, probe_readiness
from mysqlsts.local.daemon import supervisor_pid
from mysqlsts.local.procs import running_pods
from mysqlsts.local.render import PodObservation, SetView, set_view
from mysqlsts.local.spec import HOST, SetLayout, SetSpec
from mysqlsts.local.store import pod_records, read_state


def observe(layout: SetLayout, spec: SetSpec) -> SetView:
    records = pod_records(layout)
    running = running_pods(layout, records)
    state = read_state(layout)
    supervised = state.pods if state is not None else {}
    seen = []
    for ordinal in sorted(set(range(spec.replicas)) | set(records)):
        alive = ordinal in running
        if not alive and ordinal >= spec.replicas:
            continue  # a scaled-down pod: its data dir stays, the pod is gone
        port = spec.peers().address(ordinal).http_port
        probe = probe_readiness(HOST, port) if alive else Readiness(False)
        seen.append(PodObservation(
            ordinal=ordinal, alive=alive, ready=probe.ready, record=records.get(ordinal),
            supervised=supervised.get(ordinal), not_ready=probe.reason,
            kept_down=layout.pod(spec.pod_name(ordinal)).keep_down.exists(),
        ))
    return set_view(spec, layout, seen, supervisor_pid(layout), time.time())
