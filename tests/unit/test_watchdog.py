"""The watchdog's verdict from the heartbeat file's contents over its own clock (core/watchdog)."""

from __future__ import annotations

import pytest

from mysqlsts.core.watchdog import (
    Beats,
    Verdict,
    WatchdogTimings,
    begin,
    decide,
    format_bound,
    launched,
    may_start,
    next_check,
    parse_bound,
    seen,
    self_fence_claim,
    stop_bound,
)

T = WatchdogTimings(timeout=10.0, startup=120.0)


def _run(start: bytes | None, reads: list[tuple[float, bytes | None]]) -> Beats:
    """The watchdog started at 0 reading `start`, then read each (time, content)."""
    beats = begin(0.0, start)
    for now, content in reads:
        beats = seen(beats, content, now)
    return beats


@pytest.mark.parametrize(("start", "reads", "now", "verdict", "why"), [
    # No heartbeat yet: the startup allowance, counted from the server's start.
    (None, [], 0.0, Verdict.RUN, "first heartbeat"),
    (None, [(50.0, None)], 119.9, Verdict.RUN, "first heartbeat"),
    (None, [(50.0, None)], 120.0, Verdict.STOP, "within 120s"),
    # A file left by an earlier run (the emptyDir outlives a container) proves nothing until
    # it changes, whatever its content says.
    (b"7", [(1.0, b"7"), (60.0, b"7")], 119.0, Verdict.RUN, "first heartbeat"),
    (b"7", [(1.0, b"7"), (60.0, b"7")], 120.0, Verdict.STOP, "within 120s"),
    # The first change ends the allowance: from then on the timeout, from the change as seen.
    (b"7", [(5.0, b"8")], 14.9, Verdict.RUN, "heartbeat"),
    (b"7", [(5.0, b"8")], 15.0, Verdict.STOP, "not changed for 10.0s"),
    (None, [(5.0, b"1")], 15.0, Verdict.STOP, "not changed for 10.0s"),
    # Steady heartbeats keep it running long past the allowance.
    (None, [(float(t), str(t).encode()) for t in range(1, 500)], 508.0, Verdict.RUN,
     "heartbeat"),
    # The same content rewritten (a hung writer's last stamp) is no heartbeat.
    (None, [(5.0, b"1"), (8.0, b"1"), (14.0, b"1")], 15.0, Verdict.STOP, "not changed"),
    # A file that disappears or cannot be read is no heartbeat either.
    (None, [(5.0, b"1"), (8.0, None), (14.0, None)], 15.0, Verdict.STOP, "not changed"),
    (None, [(5.0, b"1"), (8.0, None), (14.0, b"1")], 15.0, Verdict.STOP, "not changed"),
    (None, [(5.0, b"1"), (8.0, None), (14.0, b"2")], 23.9, Verdict.RUN, "heartbeat"),
    # Going back to an older content is a change (a restarted sidecar's counter).
    (None, [(5.0, b"9"), (12.0, b"1")], 21.9, Verdict.RUN, "heartbeat"),
])
def test_verdict(start: bytes | None, reads: list[tuple[float, bytes | None]], now: float,
                 verdict: Verdict, why: str) -> None:
    got, reason = decide(_run(start, reads), now, T)
    assert got is verdict
    assert why in reason


def test_a_stop_is_never_a_poll_late() -> None:
    beats = _run(None, [(5.0, b"1")])
    assert next_check(beats, 6.0, T, poll=0.5) == 0.5
    assert next_check(beats, 14.8, T, poll=0.5) == pytest.approx(0.2)
    assert next_check(beats, 16.0, T, poll=0.5) == 0.0
    waiting = begin(0.0, None)
    assert next_check(waiting, 119.9, T, poll=0.5) == pytest.approx(0.1)


FENCE = "/var/lib/mysql/.mysqlsts-lease-fenced"


@pytest.mark.parametrize(("start", "reads", "fence", "ok", "why"), [
    # The pod's first start (no file in the fresh emptyDir): at once, the allowance follows.
    (None, [], None, True, "first start"),
    (None, [(1.0, None)], None, True, "first start"),
    # A restart inside the pod: the file an earlier run left vouches for nothing...
    (b"7", [], None, False, "waiting for the sidecar's heartbeat to change"),
    (b"7", [(1.0, b"7"), (2.0, None), (3.0, b"7")], None, False, "restart inside the pod"),
    # ...until it changes: a living sidecar vouches.
    (b"7", [(1.0, b"8")], None, True, "heartbeat changed"),
    (None, [(1.0, b"1")], None, True, "heartbeat changed"),
    # The lease fence holds whatever the heartbeat says; it names the marker.
    (None, [], FENCE, False, f"the primary lease fence holds ({FENCE}); waiting for the "
                             "sidecar to hold the lease"),
    (b"7", [(1.0, b"8")], FENCE, False, "fence holds"),
])
def test_may_start(start: bytes | None, reads: list[tuple[float, bytes | None]],
                   fence: str | None, ok: bool, why: str) -> None:
    got, reason = may_start(_run(start, reads), fence=fence)
    assert got is ok
    assert why in reason


def test_a_change_seen_before_the_start_is_judged_with_the_timeout() -> None:
    # A restart that waited for a change at 30: no startup allowance, the timeout from there.
    beats = launched(_run(b"7", [(30.0, b"8")]), 30.5)
    assert decide(beats, 39.9, T)[0] is Verdict.RUN
    assert decide(beats, 40.0, T)[0] is Verdict.STOP


def test_the_allowance_counts_from_the_launch_not_from_a_long_wait() -> None:
    # A first start that waited 600 s for a fence to go, no heartbeat yet: the full allowance.
    beats = launched(begin(0.0, None), 600.0)
    assert decide(beats, 719.9, T)[0] is Verdict.RUN
    assert decide(beats, 720.0, T)[0] is Verdict.STOP


@pytest.mark.parametrize(("seconds", "text"), [
    (13.5, "13.5\n"), (10.0, "10\n"), (0.05 + 1.0 + 0.5, "1.55\n"), (0.1 + 0.2, "0.3\n"),
    (1.0000001, "1.000001\n"),  # rounded up: the file never says less than the watchdog takes
])
def test_the_bound_file_is_a_plain_decimal_that_reads_back(seconds: float, text: str) -> None:
    assert format_bound(seconds) == text
    assert parse_bound(text.encode()) >= seconds - 1e-9
    assert parse_bound(text.encode()) == float(text)


@pytest.mark.parametrize("content", [
    b"", b"\n", b"0\n", b"0.0", b"-1", b"1e3", b"nan", b"inf", b" 13.5", b"13.5\n\n",
    b"13.5 s", b"\xff", b"13,5",
])
def test_a_bound_file_that_is_not_one_positive_decimal_is_refused(content: bytes) -> None:
    with pytest.raises(ValueError, match="not a"):
        parse_bound(content)


def test_the_stop_bound_and_the_self_fence_claimed_from_it() -> None:
    assert stop_bound(10.0, poll=0.5, grace=3.0) == 13.5
    assert self_fence_claim(10.0, 13.5) == 23.5
    assert self_fence_claim(10.0, None) == 0.0  # no bound stated: none claimed
