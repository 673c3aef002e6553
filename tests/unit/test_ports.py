import socket
import subprocess
import sys
from pathlib import Path

from tests.ports import EPHEMERAL_FLOOR, SHARES, PortPool, port_is_free

REPO = Path(__file__).resolve().parents[2]


def test_shares_are_disjoint_and_below_the_ephemeral_range():
    floor = EPHEMERAL_FLOOR
    local_range = Path("/proc/sys/net/ipv4/ip_local_port_range")
    if local_range.exists():
        floor = min(floor, int(local_range.read_text().split()[0]))
    taken: set[int] = set()
    for name, ports in SHARES.items():
        assert ports.start > 1024 and ports.stop <= floor, name
        assert taken.isdisjoint(ports), name
        taken.update(ports)


def test_pool_skips_a_port_someone_listens_on():
    pool = PortPool("proxy-unit")
    first = pool.one()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", first))
        listener.listen()
        assert not port_is_free(first)
        again = PortPool("proxy-unit")
        again._next = first  # the same starting point as the busy port
        assert again.one() != first
    assert port_is_free(first)


def test_blocks_are_consecutive_and_not_handed_out_twice():
    pool = PortPool("sidecar-unit")
    a, b = pool.block(10), pool.block(10)
    assert a in SHARES["sidecar-unit"] and b in SHARES["sidecar-unit"]
    assert set(range(a, a + 10)).isdisjoint(range(b, b + 10))


def test_a_reserved_port_is_not_handed_out_by_another_process_until_released():
    """pytest-xdist workers each have a pool: a reservation must hold across processes."""
    pool = PortPool("proxy-unit")
    first = pool.block(2)
    other_process = (
        "import sys; from tests.ports import PortPool; pool = PortPool('proxy-unit'); "
        f"pool._next = {first}; print(pool.one())"
    )

    def handed_out_elsewhere() -> int:
        done = subprocess.run([sys.executable, "-c", other_process], capture_output=True,
                              text=True, timeout=30, check=True, cwd=REPO)
        return int(done.stdout)

    assert handed_out_elsewhere() not in (first, first + 1)
    pool.release(first, 2)
    assert handed_out_elsewhere() == first


def test_a_pool_that_went_round_reuses_its_own_ports_nobody_listens_on(monkeypatch):
    # A share of its own (no other pool of this session holds any of it), outside the others.
    monkeypatch.setitem(SHARES, "went-round", range(24900, 24908))
    pool = PortPool("went-round")
    free = [port for port in SHARES["went-round"] if port_is_free(port)]
    handed = [pool.one() for _ in free]
    assert sorted(handed) == free  # every free port once, none twice
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", handed[0]))
        listener.listen()
        # The share is used up: the pool takes back what nobody listens on, not the busy one.
        again = [pool.one() for _ in range(len(free) - 1)]
        assert sorted(again) == sorted(set(free) - {handed[0]})
