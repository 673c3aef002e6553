"""The primary lease: who may keep the set's primary writable, and until when (pure).

The lease is one record in a store with compare-and-swap (adapters/lease_store.py): its holder,
when the holder last renewed it (the holder's wall clock, shown to people, never compared with
another machine's clock), how long it lasts and how often it changed hands. Each side decides on
its own monotonic clock, as client-go's leader election does:

- a contender takes a record someone else holds only after watching it stay unchanged for the
  lease's duration (observed here, never read from the record's renew time);
- the holder keeps its server writable only until `renew_deadline` after the START of its last
  successful renew. renew_deadline < duration, so a holder that stops renewing has fenced its
  server before anyone may take the lease, whatever the two machines' clocks say.

The sidecar's PrimaryLease worker (sidecar/lease.py) reads, asks `claim`, writes, and acts on
`guard`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

# The persisted lease fence, in the data dir (it moves with the volume): the sidecar writes it
# before it stops a server whose lease it lost and removes it once it holds the lease again;
# `mysqlsts server` starts no server while it exists (core/watchdog.py, may_start).
FENCE_FILE = ".mysqlsts-lease-fenced"


@dataclass(frozen=True)
class LeaseTimings:
    """Seconds: how long a record lasts unrenewed, how long its holder may stay writable after
    its last renew began, and how often it renews."""

    duration: float = 15.0
    renew_deadline: float = 10.0
    renew_interval: float = 2.0

    def problems(self) -> list[str]:
        found = []
        if not 0 < self.renew_interval < self.renew_deadline:
            found.append(f"the renew interval ({self.renew_interval:g}s) must be positive and "
                         f"shorter than the renew deadline ({self.renew_deadline:g}s)")
        if not self.renew_deadline < self.duration:
            found.append(f"the renew deadline ({self.renew_deadline:g}s) must be shorter than "
                         f"the lease duration ({self.duration:g}s)")
        return found


@dataclass(frozen=True)
class LeaseRecord:
    holder: str  # "" when released
    renewed_at: float  # unix time, the holder's clock: for people, never for decisions
    duration: float
    transitions: int = 0  # how often the holder changed
    # The longest time after a renew of the holder BEGAN that its server may still accept a
    # write even if its sidecar died right then (renew deadline + the watchdog's timeout and
    # kill grace): what the takeover controller waits out past the lease's duration. 0: unknown
    # (a record written before the field existed).
    self_fence: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"holder": self.holder, "renewed_at": self.renewed_at,
                "duration": self.duration, "transitions": self.transitions,
                "self_fence": self.self_fence}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LeaseRecord:
        """Raises ValueError (or KeyError/TypeError, both reported as ValueError) on a record
        that is not one. A record without `self_fence` (older) reads as 0."""
        try:
            return cls(holder=str(data["holder"]), renewed_at=float(data["renewed_at"]),
                       duration=float(data["duration"]), transitions=int(data["transitions"]),
                       self_fence=float(data.get("self_fence", 0.0)))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a lease record: {exc}") from exc


@dataclass(frozen=True)
class Seen:
    """A record as this process observed it: `since` is the monotonic time its current
    version was first seen here."""

    record: LeaseRecord | None  # None: the store holds no record yet
    version: str
    since: float


def observe(previous: Seen | None, record: LeaseRecord | None, version: str,
            now: float) -> Seen:
    """The observation after reading `version` at `now`: unchanged keeps its first sighting."""
    if previous is not None and previous.version == version:
        return previous
    return Seen(record, version, now)


class Claim(enum.StrEnum):
    RENEW = "renew"  # ours: write it again
    ACQUIRE = "acquire"  # nobody's: take it
    TAKE = "take"  # someone else's, unchanged for its whole duration here: take it
    WAIT = "wait"  # someone else's and still live


@dataclass(frozen=True)
class ClaimDecision:
    claim: Claim
    record: LeaseRecord | None  # what to write (compare-and-swap on the version seen); None: WAIT
    reason: str


def claim(seen: Seen, me: str, now: float, wall: float, duration: float, *,
          self_fence: float = 0.0) -> ClaimDecision:
    """What `me` writes after `seen`; `now` monotonic, `wall` unix time for the record,
    `self_fence` the writer's self-fence time (LeaseRecord.self_fence)."""
    current = seen.record
    if current is not None and current.holder == me:
        return ClaimDecision(Claim.RENEW, LeaseRecord(me, wall, duration, current.transitions,
                                                      self_fence), "held by us")
    transitions = 0 if current is None else current.transitions + 1
    taken = LeaseRecord(me, wall, duration, transitions, self_fence)
    if current is None or not current.holder:
        return ClaimDecision(Claim.ACQUIRE, taken, "free")
    # A live holder fences at its renew deadline (< duration); a dead one's server is stopped
    # by its watchdog only at its self-fence time: wait out the longer of the two.
    wait = max(current.duration, current.self_fence)
    unchanged = now - seen.since
    if unchanged >= wait:
        return ClaimDecision(Claim.TAKE, taken, f"held by {current.holder}, unchanged for "
                             f"{unchanged:.1f}s >= {wait:g}s")
    return ClaimDecision(Claim.WAIT, None, f"held by {current.holder}, unchanged for "
                         f"{unchanged:.1f}s < {wait:g}s")


def may_write(now: float, renew_started: float | None, renew_deadline: float) -> bool:
    """Whether the holder's server may be writable at monotonic `now`: only inside the renew
    deadline of the start of its last successful renew (None: none since this process began,
    so a restarted sidecar inherits no window)."""
    return renew_started is not None and now - renew_started < renew_deadline


class GuardAction(enum.StrEnum):
    NONE = "none"
    WRITABLE = "writable"  # read_only=OFF, forget a persisted fence
    FENCE = "fence"  # persist the fence, stop the server


def guard(now: float, *, renew_started: float | None, renew_deadline: float, fenced: bool,
          writable: bool, lifted: bool | None = None,
          read_only: bool | None = True) -> tuple[GuardAction, str]:
    """What the holder does to its server now. `fenced`: a fence is in place (ours, or persisted
    by an earlier run); `writable`: we made the server writable under the current lease;
    `lifted`: we tried to make it writable in this run (it may be, even if we never heard back;
    default: `writable`); `read_only`: True when the server says it is read-only or does not
    listen at all (it takes no writes), False when it says it is writable, None when it
    listens but we could not learn which (it may be writable: a sidecar restarted after it
    lifted read-only knows nothing of that).

    Not holding the lease, a server that started read-only (every server does, master.cnf too)
    and that this run never tried to make writable is left as it is, waiting: stopping it would
    only restart it, and a contender must stay up for a whole lease duration to take a dead
    holder's lease. One that may be writable without the lease is stopped."""
    if may_write(now, renew_started, renew_deadline):
        if fenced or not writable:
            return GuardAction.WRITABLE, "the lease is held"
        return GuardAction.NONE, "the lease is held"
    if renew_started is None:
        why = "the lease is not held (another holder has it, or none renewed since start)"
    else:
        why = (f"the lease was last renewed {now - renew_started:.1f}s ago, past the "
               f"{renew_deadline:g}s renew deadline")
    # Ours to stop: a fence in place, or a server this run made (or may have made) writable.
    ours = fenced or writable or bool(lifted)
    if not ours and read_only is True:
        return GuardAction.NONE, f"{why}: the server stays read-only"
    if not ours:
        why += (", and the server is writable" if read_only is False else
                ", and the server does not say it is read-only")
    # Repeated while not held: a server started again by someone else is stopped again.
    return GuardAction.FENCE, why


def released(current: LeaseRecord | None, me: str, wall: float) -> LeaseRecord | None:
    """The record that gives the lease up (holder ""), so the next holder need not wait a
    duration; None when it is not ours to give."""
    if current is None or current.holder != me:
        return None
    # The self-fence bound stays: the controller waits it out on a free Lease too.
    return LeaseRecord("", wall, current.duration, current.transitions, current.self_fence)


def read_only_statements(on: bool, is_mysql: bool) -> list[str]:
    """Statements that make the server read-only (`on`) or writable. MySQL's super_read_only
    also binds SUPER (root); it implies read_only, so it goes on last and off first."""
    if on:
        return ["SET GLOBAL read_only = ON"] + (
            ["SET GLOBAL super_read_only = ON"] if is_mysql else [])
    return (["SET GLOBAL super_read_only = OFF"] if is_mysql else []) + [
        "SET GLOBAL read_only = OFF"]
