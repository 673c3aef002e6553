"""The donor's rate cap as arithmetic: a fake clock and the delays the bucket asks for."""

import pytest

from mysqlsts.core.pacing import TokenBucket, burst_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def send(bucket: TokenBucket, clock: FakeClock, sizes: list[int]) -> float:
    """Send frames the way the donor does; the fake time it took."""
    started = clock.now
    for size in sizes:
        clock.sleep(bucket.delay(clock.now, size))
    return clock.now - started


@pytest.mark.parametrize("rate", [50_000.0, 10e6, 125e6])
def test_the_long_run_rate_is_the_target(rate):
    clock = FakeClock()
    bucket = TokenBucket(rate, burst_for(rate), clock.now)
    sizes = [1024 * 1024 + 16] * 200
    elapsed = send(bucket, clock, sizes)
    # The first burst is free; everything after it goes at the rate exactly.
    assert elapsed == pytest.approx((sum(sizes) - burst_for(rate)) / rate, rel=1e-9)


def test_a_frame_within_the_bucket_goes_at_once():
    clock = FakeClock()
    bucket = TokenBucket(1000.0, 500.0, clock.now)
    assert bucket.delay(clock.now, 400) == 0.0
    assert bucket.delay(clock.now, 400) == pytest.approx(0.3)  # 300 bytes in debt


def test_idle_time_refills_only_up_to_the_burst():
    clock = FakeClock()
    bucket = TokenBucket(1000.0, 500.0, clock.now)
    bucket.delay(clock.now, 500)
    clock.sleep(3600)  # an hour idle earns 500 bytes, not 3.6 MB
    assert bucket.delay(clock.now, 500) == 0.0
    assert bucket.delay(clock.now, 1000) == pytest.approx(1.0)


def test_a_clock_that_steps_back_earns_nothing():
    clock = FakeClock()
    bucket = TokenBucket(1000.0, 500.0, clock.now)
    bucket.delay(clock.now, 500)
    assert bucket.delay(clock.now - 10, 100) == pytest.approx(0.1)


def test_rate_and_burst_must_be_positive():
    with pytest.raises(ValueError):
        TokenBucket(0, 1, 0.0)
    with pytest.raises(ValueError):
        TokenBucket(1, 0, 0.0)


def test_burst_is_a_tenth_of_a_second_with_a_floor():
    assert burst_for(100e6) == 10e6
    assert burst_for(1000) == 64 * 1024
