"""mariabackup keeps every tablespace open while it backs up: the donor runs it with the
open-files soft limit raised to the hard limit (docs/benchmarks.md, "How the clone's cost
grows": at a container's soft limit of 1024, a donor of 1 500 tables failed)."""

from __future__ import annotations

import contextlib
import resource
from collections.abc import Iterator

import pytest
from test_clone_wire import FAST, TOKEN, donors, extractor  # noqa: F401 (fixtures)

from mysqlsts.clone.receiver import open_session

NOFILE = resource.RLIMIT_NOFILE


def room_to_lower() -> tuple[int, int]:
    """(a soft limit well below the hard one and above what a process has open, the hard one)."""
    soft, hard = resource.getrlimit(NOFILE)
    if hard == resource.RLIM_INFINITY or hard < 2048:
        pytest.skip(f"the hard open-files limit ({hard}) leaves no room to lower the soft one")
    return max(1024, min(soft, hard) // 2), hard


@contextlib.contextmanager
def lowered_soft_limit() -> Iterator[tuple[int, int]]:
    soft = resource.getrlimit(NOFILE)[0]
    lowered, hard = room_to_lower()
    resource.setrlimit(NOFILE, (lowered, hard))
    try:
        yield lowered, hard
    finally:
        resource.setrlimit(NOFILE, (soft, hard))


def test_the_donors_backup_tool_may_open_as_many_files_as_the_hard_limit(
    donors, extractor, tmp_path,  # noqa: F811
):
    with lowered_soft_limit() as (lowered, hard):
        donor = donors("ulimit -Sn; ulimit -Hn")  # a backup tool that reports its limits
        session = open_session(donor.candidate, TOKEN, FAST)
        session.receive_into(tmp_path, extractor, 1, FAST)
        session.close()
        assert resource.getrlimit(NOFILE) == (lowered, hard)  # ours is left as it was
    assert (tmp_path / "stream.bin").read_text().split() == [str(hard), str(hard)]
    assert donor.wait_results(1) == ["ok"]
