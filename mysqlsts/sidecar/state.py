"""The sidecar's state as immutable values: the loop replaces them, probes only read them."""

from __future__ import annotations

from dataclasses import dataclass

from mysqlsts.core.status import Observation


@dataclass(frozen=True)
class LoopState:
    """What the control loop knows after its latest cycle."""

    started_at: float
    loop_tick_at: float
    observation: Observation
    # Last time the server answered a poll; None until it first did.
    last_answer_at: float | None = None
    setup_done: bool = False
    setup_message: str = "waiting for the local server"
    # Heartbeat lag when the replica's source was first seen unreachable; None while reachable.
    lag_when_source_lost: float | None = None
    # Whether the replica's source said it is read-only, asked only while the heartbeat is past
    # max lag (None: not asked, or it did not answer).
    source_read_only: bool | None = None
