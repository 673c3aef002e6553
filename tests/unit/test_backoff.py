import pytest

from mysqlsts.core.backoff import backoff


@pytest.mark.parametrize(("failures", "seconds"), [
    (0, 0.0), (1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (6, 5.0), (10_000, 5.0)])
def test_doubles_from_the_first_wait_up_to_the_cap(failures, seconds):
    assert backoff(failures, 0.5, 5.0) == seconds
