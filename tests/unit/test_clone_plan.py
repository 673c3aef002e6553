import pytest

from mysqlsts.clone.handshake import DonorUnavailable
from mysqlsts.clone.plan import decide, srv_candidates, srv_ordinal
from mysqlsts.clone.receiver import find_donor
from mysqlsts.core.clone_record import DonorAddress as Candidate
from mysqlsts.core.datadir import DataDirState, Fill
from mysqlsts.core.peers import SrvTarget
from mysqlsts.errors import CloneError, ConfigError


@pytest.mark.parametrize(
    ("ordinal", "state", "action"),
    [
        (0, DataDirState.EMPTY, None),
        (0, DataDirState.UNKNOWN, None),  # the primary is never cloned, whatever it holds
        (1, DataDirState.INITIALIZED, Fill.SKIP),
        (1, DataDirState.EMPTY, Fill.FILL),
        (3, DataDirState.INCOMPLETE, Fill.REDO),
    ],
)
def test_decide(ordinal, state, action):
    assert decide(ordinal, state) is action


def test_unknown_files_are_never_cloned_over():
    with pytest.raises(ConfigError, match="refusing to clone over them"):
        decide(2, DataDirState.UNKNOWN)


@pytest.mark.parametrize(
    ("host", "ordinal"),
    [
        ("mysql-1.mysql.ns.svc.cluster.local.", 1),
        ("mysql-12.mysql", 12),
        ("other-1.mysql.ns.svc.cluster.local", None),
        ("mysql.mysql", None),
        ("10-0-0-7.mysql.ns.svc.cluster.local", None),
    ],
)
def test_srv_ordinal(host, ordinal):
    assert srv_ordinal(host, "mysql") == ordinal


def test_srv_candidates_lower_ordinals_nearest_first_at_clone_port():
    targets = [
        SrvTarget("mysql-0.mysql.ns.svc.cluster.local.", 3306),
        SrvTarget("mysql-3.mysql.ns.svc.cluster.local.", 3306),  # self
        SrvTarget("mysql-4.mysql.ns.svc.cluster.local.", 3306),  # higher: may be incomplete
        SrvTarget("mysql-1.mysql.ns.svc.cluster.local.", 3306),
        SrvTarget("mysql-1.mysql.ns.svc.cluster.local.", 3306),  # duplicate
        SrvTarget("web-0.web.ns.svc.cluster.local.", 80),  # another StatefulSet
    ]
    found = srv_candidates(targets, "mysql", 3, {0: 3307, 1: 3307, 2: 3307})
    assert found == [
        Candidate(1, "mysql-1.mysql.ns.svc.cluster.local", 3307),
        Candidate(0, "mysql-0.mysql.ns.svc.cluster.local", 3307),
    ]


class Clock:
    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.t += seconds


PREV = Candidate(2, "mysql-2.mysql", 3307)


def test_previous_ordinal_is_tried_first():
    tried = []

    def connect(c):
        tried.append(c)
        return f"session:{c.ordinal}"

    assert find_donor(PREV, lambda: [], connect, 10) == "session:2"
    assert tried == [PREV]


def test_falls_back_to_dns_peers_when_previous_is_gone():
    tried = []

    def connect(c):
        tried.append(c.ordinal)
        if c.ordinal == 2:
            raise DonorUnavailable("unreachable")
        return f"session:{c.ordinal}"

    discovered = [Candidate(2, "mysql-2.x", 3307), Candidate(1, "mysql-1.x", 3307)]
    assert find_donor(PREV, lambda: discovered, connect, 10) == "session:1"
    assert tried == [2, 1]  # the previous ordinal is not tried twice


def test_busy_donors_are_retried_with_backoff_until_ready():
    clock = Clock()
    answers = iter(["busy", "busy", "busy", None])

    def connect(c):
        if next(answers):
            raise DonorUnavailable("answered busy")
        return "session"

    assert find_donor(PREV, lambda: [], connect, 60, now=clock.now, sleep=clock.sleep) == "session"
    assert clock.sleeps == [1, 2, 4]


def test_gives_up_after_the_deadline_with_the_reasons():
    clock = Clock()

    def connect(c):
        raise DonorUnavailable("unreachable (Connection refused)")

    with pytest.raises(CloneError, match=r"within 20s.*Connection refused"):
        find_donor(PREV, lambda: [], connect, 20, now=clock.now, sleep=clock.sleep)
    assert sum(clock.sleeps) == pytest.approx(20)
    assert max(clock.sleeps) <= 30


def test_a_wrong_token_is_not_retried():
    calls = []

    def connect(c):
        calls.append(c)
        raise CloneError("donor refused our clone token")

    with pytest.raises(CloneError, match="token"):
        find_donor(PREV, lambda: [], connect, 60)
    assert len(calls) == 1
