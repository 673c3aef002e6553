"""The isolation fence's decision: reachability history, now, window, set size, our fence."""

from __future__ import annotations

import pytest

from mysqlsts.core.fence import FenceAction, Reachability, decide, last_contact

START = 1_000.0
WINDOW = 60.0
CUT = Reachability(at=START, api=False, peers=0)  # reached nothing
NO_API_CHECK_CUT = Reachability(at=START, api=None, peers=0)
API_ONLY = Reachability(at=START, api=True, peers=0)
PEER_ONLY = Reachability(at=START, api=False, peers=1)


@pytest.mark.parametrize("now,latest,set_size,fenced,action", [
    # cut off, inside the window: wait
    (START + 59, CUT, 3, False, FenceAction.NONE),
    # cut off for the whole window: fence, once
    (START + 60, CUT, 3, False, FenceAction.FENCE),
    (START + 600, CUT, 3, False, FenceAction.FENCE),
    (START + 600, CUT, 3, True, FenceAction.NONE),
    # the API check disabled: the peers alone decide
    (START + 60, NO_API_CHECK_CUT, 2, False, FenceAction.FENCE),
    # either the API or one peer is enough not to fence, and to lift our fence
    (START + 600, API_ONLY, 3, False, FenceAction.NONE),
    (START + 600, PEER_ONLY, 3, False, FenceAction.NONE),
    (START + 600, API_ONLY, 3, True, FenceAction.LIFT),
    (START + 600, PEER_ONLY, 3, True, FenceAction.LIFT),
    # a set of one never fences, and lifts a fence left from when it was larger
    (START + 600, CUT, 1, False, FenceAction.NONE),
    (START + 600, CUT, 1, True, FenceAction.LIFT),
    # no probe finished yet: the window runs from the sidecar's start
    (START + 30, None, 3, False, FenceAction.NONE),
    (START + 61, None, 3, False, FenceAction.FENCE),
])
def test_decision_table(now: float, latest: Reachability | None, set_size: int, fenced: bool,
                        action: FenceAction) -> None:
    decision = decide(now, last_contact_at=START, latest=latest, window=WINDOW,
                      set_size=set_size, fenced=fenced)
    assert decision.action is action, decision.reason


def test_a_contact_restarts_the_window() -> None:
    contact = START
    for at, probe in [(START + 10, PEER_ONLY), (START + 40, CUT), (START + 65, CUT)]:
        contact = last_contact(contact, Reachability(at, probe.api, probe.peers))
    assert contact == START + 10
    kwargs = dict(last_contact_at=contact, latest=CUT, window=WINDOW, set_size=3, fenced=False)
    assert decide(START + 65, **kwargs).action is FenceAction.NONE  # type: ignore[arg-type]
    assert decide(START + 70, **kwargs).action is FenceAction.FENCE  # type: ignore[arg-type]


def test_the_fence_reason_says_what_was_probed() -> None:
    decision = decide(START + 75, last_contact_at=START, latest=CUT, window=WINDOW, set_size=3,
                      fenced=False)
    assert decision.reason == ("isolated for 75s >= 60s (api unreachable, 0 peer(s) reachable): "
                               "turning read-only")
