"""Whether the primary purged what the archive had still to read, and where the archive goes on
(pure).

The primary refuses the archive's position (error 1236) either because its binary logs no
longer hold it (purged by hand or by an expiry, a partition from the archiver longer than their
retention, a re-created primary whose binary logs begin later) or because it never had it (a
diverged primary: an errant write promoted, a takeover that lost transactions). Its oldest
binary log begins at a GTID position (`BINLOG_GTID_POS(first file, 4)`: the newest GTID of each
domain written before that file). In a domain where that position is past the archive's newest
GTID, the transactions between are gone from the primary for good: the archive goes on from
there, and the range is a gap, named. Where no domain is, the refusal is not a purge, and
nothing moves (a diverged primary waits for a person, as before).

Domains are never skipped past what the archive holds: one the primary did not purge past
streams from the archive's own GTID. A domain the archive holds none of (it appeared after the
archive began, or the archive never wrote a transaction of it) streams from where the oldest
binary log begins, the only place the primary can give it from; what came before in it is not
named as a gap, as the archive cannot tell where it was meant to begin in that domain.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from mysqlsts.core.gtid import MariadbGtid, parse_mariadb


@dataclass(frozen=True)
class Purged:
    """One domain's transactions the primary no longer holds and the archive does not."""

    archived: MariadbGtid  # the archive's newest in the domain
    oldest: MariadbGtid  # the newest before the primary's oldest binary log: the last one lost

    @property
    def domain(self) -> int:
        return self.archived.domain

    def __str__(self) -> str:
        return (f"domain {self.domain} seq {self.archived.seq + 1}..{self.oldest.seq} (after "
                f"the archived {self.archived}; its oldest binary log begins after "
                f"{self.oldest})")


@dataclass(frozen=True)
class GoOn:
    """Where the archive goes on after the primary purged past it."""

    start: dict[int, MariadbGtid]  # the position to stream from, per domain
    purged: tuple[Purged, ...]  # the gaps, by domain
    unheld: tuple[MariadbGtid, ...]  # domains the archive holds none of, from the oldest start


def newest_per_domain(gtids: Iterable[MariadbGtid]) -> dict[int, MariadbGtid]:
    """The GTID with the highest seq of each domain (a binlog state lists one per server id)."""
    newest: dict[int, MariadbGtid] = {}
    for gtid in gtids:
        if gtid.domain not in newest or gtid.seq > newest[gtid.domain].seq:
            newest[gtid.domain] = gtid
    return newest


def position_map(text: str) -> dict[int, MariadbGtid]:
    """A GTID position (or state) as the newest GTID per domain."""
    return newest_per_domain(parse_mariadb(text))


def purged_past(archived: Mapping[int, MariadbGtid], oldest: str) -> GoOn | None:
    """`archived`: the archive's newest GTID per domain; `oldest`: where the primary's oldest
    binary log begins. None when in no domain the archive holds it begins past the archive."""
    begins = position_map(oldest)
    purged = tuple(Purged(have, begins[domain]) for domain, have in sorted(archived.items())
                   if domain in begins and begins[domain].seq > have.seq)
    if not purged:
        return None
    unheld = tuple(begins[d] for d in sorted(begins) if d not in archived)
    start = {**{g.domain: g for g in unheld}, **archived, **{p.domain: p.oldest for p in purged}}
    return GoOn(start, purged, unheld)
