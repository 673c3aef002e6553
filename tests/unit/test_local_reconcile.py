"""The local StatefulSet controller's decisions (OrderedReady)."""

import pytest

from mysqlsts.local.reconcile import (
    BACKOFF_RESET_SECONDS,
    Act,
    CrashLoop,
    Observed,
    backoff_seconds,
    decide,
)

NOW = 1000.0


def pods(*specs: tuple[int, str]) -> dict[int, Observed]:
    """(ordinal, "ready" | "alive" | "dead" | "terminating")"""
    return {
        o: Observed(o, alive=s != "dead", ready=s == "ready", terminating=s == "terminating")
        for o, s in specs
    }


def test_creates_ordinal_zero_first() -> None:
    decision = decide(3, False, {}, NOW)
    assert (decision.act, decision.ordinal) == (Act.CREATE, 0)


def test_waits_for_the_previous_pod_to_be_ready() -> None:
    decision = decide(3, False, pods((0, "ready"), (1, "alive")), NOW)
    assert (decision.act, decision.ordinal) == (Act.WAIT, 1)


def test_creates_the_next_ordinal_once_predecessors_are_ready() -> None:
    decision = decide(3, False, pods((0, "ready"), (1, "ready")), NOW)
    assert (decision.act, decision.ordinal) == (Act.CREATE, 2)


def test_recreates_a_killed_pod_in_the_middle() -> None:
    decision = decide(3, False, pods((0, "ready"), (1, "dead"), (2, "ready")), NOW)
    assert (decision.act, decision.ordinal) == (Act.CREATE, 1)


def test_steady_when_all_desired_pods_are_ready() -> None:
    assert decide(2, False, pods((0, "ready"), (1, "ready")), NOW).act is Act.STEADY


def test_scales_down_from_the_highest_ordinal() -> None:
    decision = decide(1, False, pods((0, "ready"), (1, "ready"), (2, "ready")), NOW)
    assert (decision.act, decision.ordinal) == (Act.TERMINATE, 2)


def test_one_change_at_a_time_while_a_pod_terminates() -> None:
    decision = decide(1, False, pods((0, "ready"), (1, "ready"), (2, "terminating")), NOW)
    assert (decision.act, decision.ordinal) == (Act.WAIT, 2)


def test_stopping_terminates_every_pod_highest_first_then_is_done() -> None:
    decision = decide(3, True, pods((0, "ready"), (1, "alive"), (2, "dead")), NOW)
    assert (decision.act, decision.ordinal) == (Act.TERMINATE, 1)
    assert decide(3, True, pods((0, "dead")), NOW).act is Act.DONE


def test_backs_off_after_failures() -> None:
    failed = {0: Observed(0, alive=True, ready=True), 1: Observed(1, alive=False,
                                                                 not_before=NOW + 4)}
    assert decide(2, False, failed, NOW).act is Act.WAIT
    assert decide(2, False, failed, NOW + 4).act is Act.CREATE


@pytest.mark.parametrize(("failures", "seconds"),
                         [(0, 0), (1, 0), (2, 1), (3, 2), (4, 4), (10, 30), (50, 30)])
def test_backoff_grows_and_is_capped(failures: int, seconds: float) -> None:
    assert backoff_seconds(failures) == seconds


def test_each_end_backs_the_next_pod_off_longer() -> None:
    loop = CrashLoop()
    delays = []
    for step in range(5):
        loop = loop.ended(NOW + step)
        delays.append(loop.not_before - (NOW + step))
    assert delays == [0, 1, 2, 4, 8]


def test_a_pod_ready_briefly_stays_in_the_crash_loop() -> None:
    loop = CrashLoop().ended(NOW).ended(NOW + 1)
    loop = loop.seen(True, NOW + 5).seen(True, NOW + 5 + BACKOFF_RESET_SECONDS - 1)
    assert loop.ends == 2
    assert loop.ended(NOW + 70).not_before == NOW + 70 + 2  # the third end: 2 s


def test_a_pod_ready_long_enough_leaves_the_crash_loop() -> None:
    loop = CrashLoop().ended(NOW).ended(NOW + 1).ended(NOW + 2)
    loop = loop.seen(True, NOW + 10).seen(True, NOW + 10 + BACKOFF_RESET_SECONDS)
    assert loop.ends == 0
    assert loop.ended(NOW + 100).not_before == NOW + 100  # first end again: no delay


def test_readiness_must_last_to_leave_the_crash_loop() -> None:
    loop = CrashLoop().ended(NOW).ended(NOW + 1)
    loop = loop.seen(True, NOW + 10).seen(False, NOW + 20)
    loop = loop.seen(True, NOW + 30).seen(True, NOW + 10 + BACKOFF_RESET_SECONDS)
    assert loop.ends == 2  # the clock restarted when the pod turned unready


def test_a_pod_kept_down_is_stopped_and_not_recreated() -> None:
    kept = {0: Observed(0, alive=True, ready=True, kept_down=True),
            1: Observed(1, alive=True, ready=True), 2: Observed(2, alive=True, ready=True)}
    decision = decide(3, False, kept, NOW)
    assert (decision.act, decision.ordinal) == (Act.TERMINATE, 0)
    down = {**kept, 0: Observed(0, alive=False, kept_down=True)}
    decision = decide(3, False, down, NOW)
    assert decision.act is Act.STEADY
    assert decision.reason == "2 pods ready, 1 kept down by `local stop`"


def test_pods_after_one_kept_down_are_still_recreated() -> None:
    pods = {0: Observed(0, alive=False, kept_down=True), 1: Observed(1, alive=True, ready=True),
            2: Observed(2, alive=False)}
    decision = decide(3, False, pods, NOW)
    assert (decision.act, decision.ordinal) == (Act.CREATE, 2)
