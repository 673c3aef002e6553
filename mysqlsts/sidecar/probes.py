"""What /livez and /readyz answer: the verdicts of core.health on the loop's latest state."""

from __future__ import annotations

from collections.abc import Callable

from mysqlsts.core.health import ReadinessInputs, Verdict, liveness, readiness
from mysqlsts.sidecar.settings import SidecarSettings
from mysqlsts.sidecar.state import LoopState


class Probes:
    """Reads only published values (the loop's state, the fence's flag) and the clock: a probe
    never waits for the server."""

    def __init__(self, settings: SidecarSettings, state: Callable[[], LoopState],
                 fenced: Callable[[], bool], clock: Callable[[], float],
                 lease_fence: Callable[[], str] = lambda: "",
                 lease_wait: Callable[[], str] = lambda: "") -> None:
        self._settings = settings
        self._state = state
        self._fenced = fenced
        self._clock = clock
        self._lease_fence = lease_fence
        self._lease_wait = lease_wait

    def liveness(self, now: float | None = None, state: LoopState | None = None) -> Verdict:
        state = self._state() if state is None else state
        return liveness(
            self._clock() if now is None else now,
            loop_tick_at=state.loop_tick_at, threshold=self._settings.loop.liveness_threshold,
        )

    def readiness(self, now: float | None = None, state: LoopState | None = None) -> Verdict:
        state = self._state() if state is None else state
        loop = self._settings.loop
        inputs = ReadinessInputs(
            is_primary=self._settings.is_primary, setup_done=state.setup_done,
            setup_message=state.setup_message, max_lag=loop.max_lag,
            stale_after=loop.stale_after,
            max_staleness_primary_down=loop.max_staleness_primary_down,
            lag_when_source_lost=state.lag_when_source_lost, fenced=self._fenced(),
            lease_fence=self._lease_fence(), lease_wait=self._lease_wait(),
            source_read_only=state.source_read_only,
        )
        return readiness(self._clock() if now is None else now, state.observation, inputs)
