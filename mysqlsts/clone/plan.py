"""Clone decisions as pure functions: whether to clone, which donors to try, how long to wait."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mysqlsts.core.datadir import DataDirState
from mysqlsts.core.identity import parse_pod_name
from mysqlsts.core.peers import SrvTarget
from mysqlsts.errors import ConfigError


class Action(enum.StrEnum):
    SKIP_PRIMARY = "skip-primary"
    SKIP_INITIALIZED = "skip-initialized"
    CLONE = "clone"
    WIPE_AND_CLONE = "wipe-and-clone"


def decide(ordinal: int, state: DataDirState) -> Action:
    """What `mysqlsts clone` does for this pod and data dir; ConfigError when it must not."""
    if ordinal == 0:
        return Action.SKIP_PRIMARY
    if state is DataDirState.INITIALIZED:
        return Action.SKIP_INITIALIZED
    if state is DataDirState.INCOMPLETE:
        return Action.WIPE_AND_CLONE
    if state is DataDirState.UNKNOWN:
        raise ConfigError(
            "data dir holds files that are neither a server's data nor an interrupted clone; "
            "refusing to clone over them"
        )
    return Action.CLONE


@dataclass(frozen=True)
class Candidate:
    ordinal: int
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


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
    clone_port_of: dict[int, int], exclude: Iterable[int] = (),
) -> list[Candidate]:
    """Donors found through DNS: lower ordinals only (they are older and complete), highest
    first (the nearest neighbour, sparing the primary), each pod once, at its clone port."""
    skip = set(exclude)
    found: dict[int, Candidate] = {}
    for target in targets:
        ordinal = srv_ordinal(target.host, statefulset)
        if ordinal is None or ordinal >= self_ordinal or ordinal in skip or ordinal in found:
            continue
        host = target.host.rstrip(".")
        found[ordinal] = Candidate(ordinal, host, clone_port_of.get(ordinal, target.port))
    return [found[o] for o in sorted(found, reverse=True)]


def backoff(initial: float = 1.0, factor: float = 2.0, cap: float = 30.0) -> Iterator[float]:
    """Delays between rounds of donor attempts: exponential, capped."""
    delay = initial
    while True:
        yield delay
        delay = min(cap, delay * factor)
