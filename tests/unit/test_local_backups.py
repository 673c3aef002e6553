"""`local backup`'s donor: the highest-ordinal ready replica, the primary only in a one-pod set."""

from pathlib import Path

import pytest

from mysqlsts.errors import ConfigError
from mysqlsts.local.backups import choose_donor
from mysqlsts.local.records import Phase, PodRecord
from mysqlsts.local.render import PodObservation, PodView, set_view
from mysqlsts.local.spec import SetLayout, SetSpec


def pods(tmp_path: Path, ready: list[bool]) -> tuple[PodView, ...]:
    spec = SetSpec(replicas=len(ready), base_port=22300)
    seen = [PodObservation(o, alive=True, ready=r, record=PodRecord(10 + o, o, Phase.RUNNING))
            for o, r in enumerate(ready)]
    return set_view(spec, SetLayout(tmp_path), seen, supervisor_pid=1, now=0.0).pods


@pytest.mark.parametrize(("ready", "donor"), [
    ([True, True, True], "mysql-2"),
    ([True, True, False], "mysql-1"),  # never a pod that is not ready
    ([False, True], "mysql-1"),  # the primary's readiness does not matter
    ([True], "mysql-0"),  # a one-pod set has only its primary
])
def test_the_highest_ready_replica_serves(tmp_path: Path, ready: list[bool],
                                          donor: str) -> None:
    assert choose_donor(pods(tmp_path, ready), len(ready)).name == donor


def test_never_the_primary_of_a_set_with_replicas(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="has not a ready replica"):
        choose_donor(pods(tmp_path, [True, False, False]), 3)
    with pytest.raises(ConfigError, match="has not mysql-0 ready"):
        choose_donor(pods(tmp_path, [False]), 1)
