"""Whose turn it is to archive: every pod's sidecar runs an archiver, and they contend for the
store's archive lease (archive/lock.py) with a preference that keeps the load off the primary
(pure; docs/backup.md, "The binlog archive", "In the sidecar").

- A replica's archiver contends at once: it takes a free lease at its next read and a lease
  whose holder stopped renewing after the lease's duration (core/lease.py `claim`).
- The primary's archiver contends at once only with `patience` 0 (a set of one pod); otherwise
  only once the lease has stayed unchanged (free, or held by an archiver that stopped renewing)
  for `patience` lease durations as it watched, so a set whose replicas are all gone still
  archives, after a pause, and a live replica always wins the race.
- The primary, holding the lease, gives it up after `term` seconds (unless it contends at
  once), so a replica that came back takes it over; with no replica there, the primary takes it
  again after its patience.

The role is the pod's (core/identity.py: ordinal 0 is the primary), fixed for the sidecar's
life: a sidecar never changes role while it runs, and a stopped one releases its lease.
"""

from __future__ import annotations

from dataclasses import dataclass

from mysqlsts.core.lease import Seen

PRIMARY_PATIENCE = 3.0  # lease durations the primary waits, by default
HANDBACK_TERMS = 20.0  # lease durations the primary holds the lease before it gives it up


@dataclass(frozen=True)
class Turn:
    """How this pod's archiver contends: `patience` in lease durations (0: at once), and the
    seconds it holds the lease before giving it up (None: until it stops)."""

    duration: float
    patience: float = 0.0
    term: float | None = None


def turn_for(is_primary: bool, duration: float, patience: float) -> Turn:
    """A replica contends at once and keeps the lease; the primary waits `patience` lease
    durations (0: at once, as in a set of one pod, and keeps the lease) and holds it for
    HANDBACK_TERMS durations."""
    if not is_primary or patience <= 0:
        return Turn(duration)
    return Turn(duration, patience, HANDBACK_TERMS * duration)


def may_contend(turn: Turn, seen: Seen, me: str, now: float) -> str:
    """Why this archiver does not contend for the lease as `seen` at monotonic `now` ("" when
    it may: it then decides as any contender, core/lease.py `claim`)."""
    current = seen.record
    if turn.patience <= 0 or (current is not None and current.holder == me):
        return ""
    unchanged = now - seen.since
    wait = turn.patience * turn.duration
    if unchanged >= wait:
        return ""
    # One sentence per state (the waiting archiver logs it when it changes).
    state = "free" if current is None or not current.holder else f"held by {current.holder}"
    return (f"{state}; the primary's archiver contends once it stays unchanged for {wait:g}s "
            "(a replica's archiver takes it first)")


def term_over(turn: Turn, held_since: float | None, now: float) -> bool:
    """Whether the holder gives the lease up now: its term is over."""
    return turn.term is not None and held_since is not None and now - held_since >= turn.term
