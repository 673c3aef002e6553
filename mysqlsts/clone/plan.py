"""Clone decisions as pure functions: whether to clone, which donors to try."""

from __future__ import annotations

from collections.abc import Iterable

from mysqlsts.core.clone_record import DonorAddress
from mysqlsts.core.datadir import DataDirState, Fill, plan_fill
from mysqlsts.core.identity import parse_pod_name
from mysqlsts.core.peers import SrvTarget
from mysqlsts.errors import ConfigError

# Seconds between rounds of donor attempts: the first wait, and the longest.
RETRY_FIRST = 1.0
RETRY_CAP = 30.0


def decide(ordinal: int, state: DataDirState) -> Fill | None:
    """What `mysqlsts clone` does with this pod's data dir: None on the primary (ordinal 0 is
    never cloned), else what any filler does; ConfigError when it must not touch it."""
    return None if ordinal == 0 else plan_fill(state, "clone")


def srv_ordinal(target_host: str, statefulset: str) -> int | None:
    """The ordinal of a pod named by an SRV target (`mysql-1.mysql.ns.svc.cluster.local.`)."""
    label = target_host.split(".", 1)[0]
    try:
        name, ordinal = parse_pod_name(label)
    except ConfigError:
        return None
    return ordinal if name == statefulset else None


def srv_candidates(
    targets: Iterable[SrvTarget], statefulset: str, self_ordinal: int,
    clone_port_of: dict[int, int],
) -> list[DonorAddress]:
    """Donors found through DNS: lower ordinals only (they are older and complete), highest
    first (the nearest neighbour, sparing the primary), each pod once, at its clone port."""
    found: dict[int, DonorAddress] = {}
    for target in targets:
        ordinal = srv_ordinal(target.host, statefulset)
        if ordinal is None or ordinal >= self_ordinal or ordinal in found:
            continue
        host = target.host.rstrip(".")
        found[ordinal] = DonorAddress(ordinal, host, clone_port_of.get(ordinal, target.port))
    return [found[o] for o in sorted(found, reverse=True)]
