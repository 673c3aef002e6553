"""`mysqlsts backup --donor auto`: find the set's pods, ask each one's sidecar /readyz, and let
core.backup_donor choose (the highest-ordinal ready replica; the primary only in a one-pod set).

The pods are found the way the clone step finds its peers: with the set's size given
(`--replicas`), ordinals 0..N-1 at the peer directory's addresses (core.peers; the local set's
loopback ports); without it, from the headless Service's DNS SRV records (`_clone._tcp.SERVICE`),
which list every pod of the set, ready or not (publishNotReadyAddresses), so a replica that is
there but not ready is a named reason, never a reason to fall back to the primary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mysqlsts.adapters.readyz import Readiness, probe_readiness
from mysqlsts.clone.plan import srv_ordinal
from mysqlsts.core.backup_donor import DonorCandidate, choose_donor
from mysqlsts.core.clone_record import DonorAddress
from mysqlsts.core.peers import PeerDirectory, SrvTarget
from mysqlsts.errors import ConfigError

log = logging.getLogger(__name__)

PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class SetPod:
    ordinal: int
    host: str
    clone_port: int
    http_port: int


def pods_from_srv(targets: Iterable[SrvTarget], peers: PeerDirectory) -> list[SetPod]:
    """The set's pods the SRV records name (each once; other names ignored), at the record's
    clone port and the directory's http port."""
    found: dict[int, SetPod] = {}
    for target in targets:
        ordinal = srv_ordinal(target.host, peers.statefulset)
        if ordinal is not None and ordinal not in found:
            found[ordinal] = SetPod(ordinal, target.host.rstrip("."), target.port,
                                    peers.address(ordinal).http_port)
    return [found[ordinal] for ordinal in sorted(found)]


def pods_from_directory(peers: PeerDirectory, replicas: int) -> list[SetPod]:
    return [SetPod(o, a.host, a.clone_port, a.http_port)
            for o, a in ((o, peers.address(o)) for o in range(replicas))]


def find_donor(peers: PeerDirectory, replicas: int,
               lookup: Callable[[str], list[SrvTarget]] | None = None,
               probe: Callable[[str, int], Readiness] | None = None) -> DonorAddress:
    """The donor's clone port; ConfigError in one line when no pod qualifies. `replicas` 0:
    the set's pods from DNS (`lookup`, dnspython's by default)."""
    if replicas > 0:
        pods = pods_from_directory(peers, replicas)
        size = replicas
    else:
        srv_name = f"_clone._tcp.{peers.service}"
        if lookup is None:
            from mysqlsts.adapters.dns import lookup_srv
            lookup = lookup_srv
        pods = pods_from_srv(lookup(srv_name), peers)
        if not pods:
            raise ConfigError(f"no donor for a backup: DNS lists no pod of the set "
                              f"{peers.statefulset} under {srv_name}")
        size = pods[-1].ordinal + 1  # a StatefulSet's pods are 0..N-1; a gap is a pod not there
    ask = probe or (lambda host, port: probe_readiness(host, port, PROBE_SECONDS))
    seen = []
    for pod in pods:
        answer = ask(pod.host, pod.http_port)
        seen.append(DonorCandidate(pod.ordinal, answer.ready,
                                   answer.reason or (None if answer.ready else
                                                     f"no answer from {pod.host}:"
                                                     f"{pod.http_port}/readyz")))
    chosen = choose_donor(seen, size, peers.statefulset)
    pod = next(pod for pod in pods if pod.ordinal == chosen.ordinal)
    log.info("backup: donor auto chose %s-%d at %s:%d of %d pod(s)", peers.statefulset,
             pod.ordinal, pod.host, pod.clone_port, size)
    return DonorAddress(pod.ordinal, pod.host, pod.clone_port)
