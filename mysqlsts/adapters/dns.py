"""DNS SRV lookups (dnspython): how a clone finds peers the headless Service lists."""

from __future__ import annotations

import logging

import dns.exception
import dns.resolver

from mysqlsts.core.peers import SrvTarget

log = logging.getLogger(__name__)


def lookup_srv(name: str, timeout: float = 5.0) -> list[SrvTarget]:
    """The SRV targets of `name`; empty when it does not resolve (no peers is an answer too).

    Relative names (`_mysql._tcp.mysql`) go through the resolver's search list, as in a pod.
    """
    try:
        resolver = dns.resolver.Resolver()
        resolver.lifetime = timeout
        answer = resolver.resolve(name, "SRV", search=True)
    except dns.exception.DNSException as exc:  # any failed lookup: the caller retries later
        log.info("SRV lookup found no peers name=%s reason=%s", name, type(exc).__name__)
        return []
    return [SrvTarget(host=str(record.target), port=int(record.port)) for record in answer]
