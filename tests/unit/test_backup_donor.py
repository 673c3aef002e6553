"""core.backup_donor: the highest-ordinal ready replica; the primary only in a one-pod set."""

from __future__ import annotations

import pytest

from mysqlsts.core.backup_donor import DonorCandidate, choose_donor
from mysqlsts.errors import ConfigError


def seen(*ready: bool) -> list[DonorCandidate]:
    return [DonorCandidate(ordinal, is_ready) for ordinal, is_ready in enumerate(ready)]


@pytest.mark.parametrize(("pods", "size", "donor"), [
    (seen(True, True, True), 3, 2),
    (seen(True, True, False), 3, 1),  # never a pod that is not ready
    (seen(False, True), 2, 1),  # the primary's readiness does not matter
    (seen(True), 1, 0),  # a one-pod set has only its primary
    (seen(True, True, True)[::-1], 3, 2),  # in any order
    ([DonorCandidate(1, True), DonorCandidate(3, True)], 4, 3),  # pods missing in between
    (seen(True, True, True, True), 3, 2),  # ordinal 3 is past the set's size: not a member
])
def test_the_highest_ready_replica_serves(pods: list[DonorCandidate], size: int,
                                          donor: int) -> None:
    assert choose_donor(pods, size).ordinal == donor


@pytest.mark.parametrize(("pods", "size", "said"), [
    (seen(True, False, False), 3,
     "no donor for a backup: the set of 3 pod(s) has not a ready replica (mysql-1: not ready; "
     "mysql-2: not ready)"),
    ([DonorCandidate(0, True), DonorCandidate(1, False, "replication lag 40s > 30s")], 3,
     "no donor for a backup: the set of 3 pod(s) has not a ready replica (mysql-1: "
     "replication lag 40s > 30s; mysql-2: not found)"),
    (seen(False), 1, "no donor for a backup: the set of 1 pod(s) has not mysql-0 ready "
     "(mysql-0: not ready)"),
    ([], 0, "no donor for a backup: the set of 0 pod(s) has not mysql-0 ready"),
])
def test_never_the_primary_of_a_set_with_replicas(pods: list[DonorCandidate], size: int,
                                                  said: str) -> None:
    with pytest.raises(ConfigError) as raised:
        choose_donor(pods, size)
    assert str(raised.value) == said


def test_the_set_name_names_the_pods() -> None:
    with pytest.raises(ConfigError, match=r"has not db-0 ready \(db-0: not ready\)$"):
        choose_donor(seen(False), 1, "db")
