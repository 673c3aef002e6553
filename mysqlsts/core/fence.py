"""The isolation fence: when a primary must turn itself read-only, and when it may stop.

A primary that reaches neither the Kubernetes API nor any peer's sidecar for the whole window
is assumed to be cut off from the set: a takeover may be promoting another pod, so it stops
taking writes (the takeover controller waits at least twice this window before it acts, see
takeover/fence.py). Reaching either again lifts the fence, but only a fence we set: a server an
operator made read-only stays so. A set of one pod has nobody to take over and never fences.

Pure: the sidecar's fence thread probes, keeps `last_contact_at`, calls `decide`, and acts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class FenceAction(enum.StrEnum):
    NONE = "none"
    FENCE = "fence"  # read_only=ON, kill write transactions
    LIFT = "lift"  # read_only=OFF (only ever after our own FENCE)


@dataclass(frozen=True)
class Reachability:
    """One probe round: whether the API endpoint answered a TLS handshake (None: not checked)
    and how many peers' sidecars answered over HTTP."""

    at: float
    api: bool | None
    peers: int

    @property
    def any(self) -> bool:
        return bool(self.api) or self.peers > 0

    def describe(self) -> str:
        api = "not checked" if self.api is None else ("reachable" if self.api else "unreachable")
        return f"api {api}, {self.peers} peer(s) reachable"


def last_contact(previous: float, probe: Reachability) -> float:
    """When anything was last reached: the probe's time if it reached something."""
    return probe.at if probe.any else previous


@dataclass(frozen=True)
class FenceDecision:
    action: FenceAction
    reason: str


def decide(
    now: float, *, last_contact_at: float, latest: Reachability | None, window: float,
    set_size: int, fenced: bool,
) -> FenceDecision:
    """What to do now. `last_contact_at` starts at the sidecar's start (a fresh sidecar gets the
    full window); `fenced` is whether WE hold the fence."""
    if set_size <= 1:
        if fenced:
            return FenceDecision(FenceAction.LIFT, "a set of one pod never fences")
        return FenceDecision(FenceAction.NONE, "a set of one pod never fences")
    if latest is not None and latest.any:
        if fenced:
            return FenceDecision(FenceAction.LIFT, f"reachable again: {latest.describe()}")
        return FenceDecision(FenceAction.NONE, f"not isolated: {latest.describe()}")
    isolated = now - last_contact_at
    seen = latest.describe() if latest is not None else "no probe yet"
    if isolated >= window:
        if fenced:
            return FenceDecision(FenceAction.NONE, f"fenced, isolated for {isolated:.0f}s")
        return FenceDecision(
            FenceAction.FENCE,
            f"isolated for {isolated:.0f}s >= {window:g}s ({seen}): turning read-only",
        )
    return FenceDecision(FenceAction.NONE, f"isolated for {isolated:.0f}s < {window:g}s ({seen})")
