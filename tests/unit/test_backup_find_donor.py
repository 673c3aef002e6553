"""backup.donor: the set's pods from the headless Service's SRV records or from the peer
directory, each sidecar's /readyz (both given here as recorded answers), then core's choice."""

from __future__ import annotations

import pytest

from mysqlsts.adapters.readyz import Readiness
from mysqlsts.backup.donor import find_donor, pods_from_srv
from mysqlsts.core.clone_record import DonorAddress
from mysqlsts.core.peers import PeerDirectory, SrvTarget
from mysqlsts.errors import ConfigError

PEERS = PeerDirectory("mysql", "mysql", "{statefulset}-{ordinal}.{service}", 3306, 3307, 8080, 0)
FQDN = "mysql-{}.mysql.db.svc.cluster.local."


def srv(*ordinals: int) -> list[SrvTarget]:
    return [SrvTarget(FQDN.format(o), 3307) for o in ordinals]


def answers(ready: dict[str, bool | str]) -> dict[tuple[str, int], Readiness]:
    """By host: True (200), a string (503 with that line) or False (no answer)."""
    return {(host, 8080): Readiness(value is True, value if isinstance(value, str) else None)
            for host, value in ready.items()}


def test_pods_from_srv_each_once_and_only_the_sets() -> None:
    targets = [*srv(2, 0, 1, 2), SrvTarget("other-0.mysql.db.svc.cluster.local.", 3307),
               SrvTarget("mysql-x.mysql.db.svc.cluster.local.", 3307)]
    pods = pods_from_srv(targets, PEERS)
    assert [(p.ordinal, p.host, p.clone_port, p.http_port) for p in pods] == [
        (o, FQDN.format(o).rstrip("."), 3307, 8080) for o in (0, 1, 2)]


@pytest.mark.parametrize(("listed", "ready", "donor"), [
    ((0, 1, 2), {0: True, 1: True, 2: True}, 2),
    ((0, 1, 2), {0: True, 1: True, 2: "not ready: replication lag 40s"}, 1),
    ((0,), {0: True}, 0),  # a one-pod set: its primary
])
def test_from_dns(listed: tuple[int, ...], ready: dict[int, bool | str], donor: int) -> None:
    said = answers({FQDN.format(o).rstrip("."): v for o, v in ready.items()})
    chosen = find_donor(PEERS, 0, lambda name: srv(*listed) if name == "_clone._tcp.mysql"
                        else [], lambda host, port: said[(host, port)])
    assert chosen == DonorAddress(donor, FQDN.format(donor).rstrip("."), 3307)


def test_a_replica_listed_but_not_ready_is_no_reason_to_take_the_primary() -> None:
    said = answers({FQDN.format(0).rstrip("."): True, FQDN.format(1).rstrip("."): False,
                    FQDN.format(3).rstrip("."): "not ready: clone in progress"})
    with pytest.raises(ConfigError) as raised:
        find_donor(PEERS, 0, lambda _: srv(0, 1, 3), lambda host, port: said[(host, port)])
    assert str(raised.value) == (
        "no donor for a backup: the set of 4 pod(s) has not a ready replica (mysql-1: no "
        "answer from mysql-1.mysql.db.svc.cluster.local:8080/readyz; mysql-2: not found; "
        "mysql-3: not ready: clone in progress)")


def test_dns_listing_no_pod_is_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^no donor for a backup: DNS lists no pod of the "
                       r"set mysql under _clone._tcp.mysql$"):
        find_donor(PEERS, 0, lambda _: [], lambda host, port: Readiness(True))


def test_with_the_sets_size_the_peer_directory_addresses_the_pods() -> None:
    local = PeerDirectory("mysql", "mysql", "127.0.0.1", 22300, 22301, 22302, 10)
    asked: list[tuple[str, int]] = []

    def probe(host: str, port: int) -> Readiness:
        asked.append((host, port))
        return Readiness(True)

    chosen = find_donor(local, 3, lambda _: pytest.fail("no DNS with --replicas"), probe)
    assert chosen == DonorAddress(2, "127.0.0.1", 22321)
    assert asked == [("127.0.0.1", 22302), ("127.0.0.1", 22312), ("127.0.0.1", 22322)]
