"""Which pod a base backup is taken from: the highest-ordinal ready replica, the primary
(ordinal 0) only when the set has one pod, so a backup never loads the server that takes the
writes while a replica can serve it. One rule for `mysqlsts backup --donor auto` and `local
backup`; the callers observe the pods, this decides."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from mysqlsts.errors import ConfigError


@dataclass(frozen=True)
class DonorCandidate:
    """One pod of the set as observed: its ordinal, whether its sidecar's /readyz said 200,
    and if not, what it said (None when nothing answered)."""

    ordinal: int
    ready: bool
    reason: str | None = None


def choose_donor(pods: Sequence[DonorCandidate], set_size: int,
                 statefulset: str = "mysql") -> DonorCandidate:
    """The donor among `pods` of a set of `set_size` pods, or ConfigError in one sentence
    naming why each pod that could serve does not."""
    in_set = sorted((pod for pod in pods if 0 <= pod.ordinal < set_size),
                    key=lambda pod: pod.ordinal)
    allowed = [pod for pod in in_set if pod.ordinal > 0] if set_size > 1 else in_set
    ready = [pod for pod in allowed if pod.ready]
    if ready:
        return max(ready, key=lambda pod: pod.ordinal)
    wanted = "a ready replica" if set_size > 1 else f"{statefulset}-0 ready"
    seen = {pod.ordinal: pod for pod in allowed}
    reasons = [f"{statefulset}-{ordinal}: "
               f"{seen[ordinal].reason or 'not ready' if ordinal in seen else 'not found'}"
               for ordinal in range(1 if set_size > 1 else 0, set_size)]
    detail = f" ({'; '.join(reasons)})" if reasons else ""
    raise ConfigError(f"no donor for a backup: the set of {set_size} pod(s) has not "
                      f"{wanted}{detail}")
