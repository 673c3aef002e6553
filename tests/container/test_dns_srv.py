"""Peers found through DNS SRV, served by a real DNS server (dnsmasq) on the test network, the
way a headless Service publishes `_mysql._tcp.mysql` for the pods it lists."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from container_pods import Cluster, DnsServer


def test_clone_falls_back_to_srv_when_the_previous_ordinal_is_gone(
    make_cluster: Callable[..., Cluster], dns_server: DnsServer
) -> None:
    dns_server.serve([0, 1])
    cluster = make_cluster("dns", dns=True)
    cluster.scale(2)
    # The pods' resolver answers the Service's SRV records from the DNS server.
    assert sorted(cluster.resolve_srv("_mysql._tcp.mysql")) == [
        "mysql-0.mysql. 3306", "mysql-1.mysql. 3306"]

    note = secrets.token_hex(6)
    cluster.sql_via("mysql-0.mysql", [
        "CREATE DATABASE IF NOT EXISTS dns",
        "CREATE TABLE IF NOT EXISTS dns.notes (note VARCHAR(32) PRIMARY KEY)",
        f"INSERT INTO dns.notes VALUES ('{note}')",
    ])

    # mysql-1 goes away (its name stops resolving) and leaves the Service's records.
    cluster.pod(1).remove()
    dns_server.serve([0])
    assert cluster.resolve_srv("_mysql._tcp.mysql") == ["mysql-0.mysql. 3306"]
    third = cluster.pod(2)
    third.up()
    third.wait_readyz(200)

    record = third.clone_record()
    assert record is not None, "mysql-2 did not clone"
    assert record["donor"]["ordinal"] == 0, record
    assert record["donor"]["host"] == "mysql-0.mysql", record
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if third.query("SELECT note FROM dns.notes") == [(note,)]:
            break
        time.sleep(0.5)
    assert third.query("SELECT note FROM dns.notes") == [(note,)]
