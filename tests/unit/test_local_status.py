"""`local status` rendering and the `local` commands' refusals of bad input."""

import fcntl
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from mysqlsts.cli import cli
from mysqlsts.errors import ConfigError
from mysqlsts.local.capacity import capacity_problem
from mysqlsts.local.records import Phase, PodRecord, SupervisorPodState
from mysqlsts.local.render import PodObservation, SetView, render_table, set_view, status_document
from mysqlsts.local.setdir import check_cnf_dir
from mysqlsts.local.spec import SetLayout, SetSpec
from tests.localset import LOCAL_SET_SPAN
from tests.ports import PortPool

NOW = 1000.0


def view(tmp_path: Path) -> SetView:
    spec = SetSpec(replicas=4, base_port=22300)
    seen = [
        PodObservation(0, alive=True, ready=True, record=PodRecord(11, 0, Phase.RUNNING)),
        PodObservation(
            1, alive=True, ready=False, record=PodRecord(12, 1, Phase.RUNNING),
            supervised=SupervisorPodState(alive=True, pid=12, ready=False, restarts=2,
                                          last_end="clone exited with code 1: refused"),
            not_ready="replication IO thread not running; error 1045: Access denied",
        ),
        PodObservation(2, alive=False, ready=False,
                       record=PodRecord(13, 2, Phase.FAILED, reason="sidecar exited")),
        PodObservation(
            3, alive=False, ready=False, record=PodRecord(14, 3, Phase.RUNNING),
            supervised=SupervisorPodState(alive=False, pid=None, ready=False, restarts=3,
                                          last_end="pod process ended unexpectedly (signal 9)",
                                          back_off_until=NOW + 3.5),
        ),
    ]
    return set_view(spec, SetLayout(tmp_path), seen, supervisor_pid=99, now=NOW)


def document(tmp_path: Path) -> dict:
    return status_document(view(tmp_path))


def test_status_document_has_the_contract_fields(tmp_path: Path) -> None:
    doc = document(tmp_path)
    first, second, third, fourth = doc["pods"]
    assert first == {
        **first,
        "ordinal": 0, "name": "mysql-0", "role": "primary", "ready": True, "server_id": 100,
        "mysql": {"host": "127.0.0.1", "port": 22300},
        "http": {"host": "127.0.0.1", "port": 22302},
        "pid": 11, "phase": "running",
    }
    assert (second["role"], second["server_id"], second["restarts"]) == ("replica", 101, 2)
    # Why the live pod is not ready now; why its predecessor ended is kept apart.
    assert second["reason"] == "replication IO thread not running; error 1045: Access denied"
    assert second["last_end"] == "clone exited with code 1: refused"
    assert (third["phase"], third["pid"], third["reason"]) == ("failed", None, "sidecar exited")
    # Held back by the supervisor after a crash, as a kubelet's CrashLoopBackOff.
    assert (fourth["phase"], fourth["pid"], fourth["restarts"]) == ("back-off", None, 3)
    assert fourth["reason"] == (
        "back-off 4s restarting the pod after: pod process ended unexpectedly (signal 9)"
    )
    assert doc["credentials"] == {
        "user": "root", "password_file": str(tmp_path / "secrets" / "root-password")
    }
    json.dumps(doc)  # serialisable


def test_table_lists_every_pod_and_why_it_is_not_ready(tmp_path: Path) -> None:
    table = render_table(view(tmp_path))
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "PHASE", "READY", "SERVER_ID", "MYSQL", "HTTP",
                                "RESTARTS"]
    assert lines[1].split() == ["mysql-0", "primary", "running", "yes", "100",
                                "127.0.0.1:22300", "127.0.0.1:22302", "0"]
    assert "mysql-1: replication IO thread not running; error 1045: Access denied" in table
    assert "mysql-1: restarted after: clone exited with code 1: refused" in table
    assert lines[4].split()[:3] == ["mysql-3", "replica", "back-off"]
    assert "mysql-3: back-off 4s restarting the pod after: pod process ended" in table
    assert "supervisor running (pid 99)" in table


def invoke(*args: str):  # noqa: ANN201
    return CliRunner().invoke(cli, ["local", *args])


def test_status_of_a_directory_that_is_no_set_fails_in_one_line(tmp_path: Path) -> None:
    result = invoke("status", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert "is not a local set" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_down_purge_refuses_a_foreign_directory_and_keeps_it(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = invoke("down", "--dir", str(tmp_path), "--purge")
    assert result.exit_code == 2
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_up_refuses_a_non_empty_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with PortPool("local").reserved(LOCAL_SET_SPAN) as base:  # free ports: not what fails
        result = invoke("up", "--dir", str(tmp_path), "--replicas", "1", "--base-port",
                        str(base))
    assert result.exit_code == 2
    assert "holds no local set" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["precious.txt"]


def test_up_refuses_ports_beyond_the_range(tmp_path: Path) -> None:
    result = invoke("up", "--dir", str(tmp_path / "s"), "--replicas", "5",
                    "--base-port", "65500")
    assert result.exit_code == 2
    assert "outside 1024..65535" in result.output
    assert not (tmp_path / "s").exists()


def test_up_refuses_a_different_base_port_for_an_existing_set(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(SetSpec(replicas=1, base_port=22500).to_json())
    result = invoke("up", "--dir", str(tmp_path), "--replicas", "1", "--base-port", "22600")
    assert result.exit_code == 2
    assert "created with --base-port 22500" in result.output


def test_kill_of_a_pod_that_is_not_running_fails(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(SetSpec(replicas=1, base_port=22500).to_json())
    result = invoke("kill", "--dir", str(tmp_path), "0")
    assert result.exit_code == 2
    assert "mysql-0 is not running" in result.output


def test_up_refuses_ports_another_process_listens_on(tmp_path: Path) -> None:
    import socket

    # A block of the local share, so no other test run holds these ports meanwhile.
    with PortPool("local").reserved(LOCAL_SET_SPAN) as base, socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 12))
        taken.listen()
        result = invoke("up", "--dir", str(tmp_path / "s"), "--replicas", "2",
                        "--base-port", str(base))
    assert result.exit_code == 2
    assert f"port(s) [{base + 12}] on 127.0.0.1 are in use" in result.output
    assert not (tmp_path / "s").exists()


def test_status_once_the_back_off_is_over_shows_why_the_pod_ended(tmp_path: Path) -> None:
    supervised = SupervisorPodState(alive=False, pid=None, ready=False, restarts=1,
                                    last_end="pod process ended unexpectedly (signal 9)",
                                    back_off_until=NOW - 0.1)
    seen = PodObservation(0, alive=False, ready=False, record=PodRecord(11, 0, Phase.RUNNING),
                          supervised=supervised)
    (pod,) = set_view(SetSpec(replicas=1), SetLayout(tmp_path), [seen], None, NOW).pods
    assert (pod.phase, pod.reason) == (Phase.ABSENT, "pod process ended unexpectedly (signal 9)")


def write_set(tmp_path: Path, master: str = "[mysqld]\n", slave: str = "[mysqld]\n") -> None:
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "spec.json").write_text(SetSpec(replicas=1, base_port=22500).to_json())
    (tmp_path / "config-map").mkdir()
    (tmp_path / "config-map" / "master.cnf").write_text(master)
    (tmp_path / "config-map" / "slave.cnf").write_text(slave)


def test_up_refuses_a_different_cnf_dir_for_an_existing_set(tmp_path: Path) -> None:
    write_set(tmp_path / "set")
    other = tmp_path / "cnf"
    other.mkdir()
    (other / "master.cnf").write_text("[mysqld]\n")
    (other / "slave.cnf").write_text("[mysqld]\nread_only=OFF\n")
    result = invoke("up", "--dir", str(tmp_path / "set"), "--cnf-dir", str(other))
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "keeps the cnf it was created with" in result.output
    assert "another slave.cnf" in result.output
    assert (tmp_path / "set" / "config-map" / "slave.cnf").read_text() == "[mysqld]\n"
    assert not (tmp_path / "set" / "supervisor.pid").exists()


def test_the_same_cnf_dir_for_an_existing_set_is_accepted(tmp_path: Path) -> None:
    write_set(tmp_path, slave="[mysqld]\nread_only=ON\n")
    same = tmp_path / "same"
    same.mkdir()
    (same / "master.cnf").write_text("[mysqld]\n")
    (same / "slave.cnf").write_text("[mysqld]\nread_only=ON\n")
    check_cnf_dir(SetLayout(tmp_path), same)  # no error
    (same / "master.cnf").write_text("[mysqld]\nlog_bin=other\n")
    with pytest.raises(ConfigError, match="another master.cnf"):
        check_cnf_dir(SetLayout(tmp_path), same)


def test_capacity_counts_memory_then_disk() -> None:
    gib = 2**30
    assert capacity_problem(3, 3, memory_available=8 * gib, disk_free=8 * gib) is None
    assert capacity_problem(40, 0, memory_available=8 * gib, disk_free=0) == (
        "40 more pod(s) need about 10240 MiB of memory; 8192 MiB are available"
    )
    assert capacity_problem(4, 4, memory_available=8 * gib, disk_free=gib // 2) == (
        "4 new data dir(s) need about 1024 MiB of disk; 512 MiB are free"
    )


def test_up_refuses_more_pods_than_the_machine_holds(tmp_path: Path) -> None:
    # 6000 pods fit in the port range (1024 + 6000 × 10) but in no test machine's memory.
    result = invoke("up", "--dir", str(tmp_path / "s"), "--replicas", "6000",
                    "--base-port", "1024")
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "6000 replicas do not fit on this machine: 6000 more pod(s) need about" in result.output
    assert not (tmp_path / "s").exists()


def test_scale_refuses_more_pods_than_the_port_range_holds(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(SetSpec(replicas=1, base_port=60000).to_json())
    result = invoke("scale", "--dir", str(tmp_path), "--replicas", "600")
    assert result.exit_code == 2, result.output
    assert "outside 1024..65535" in result.output
    assert SetSpec.from_json((tmp_path / "spec.json").read_text()).replicas == 1


def test_up_on_a_new_set_another_up_is_creating_is_refused(tmp_path: Path) -> None:
    # What a concurrent `up` holds while it creates the set: an flock on the directory.
    new = tmp_path / "set"
    new.mkdir()
    nowhere = tmp_path / "no-cnf"  # were the lock ignored, prepare would fail on this
    nowhere.mkdir()
    fd = os.open(new, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with PortPool("local").reserved(LOCAL_SET_SPAN) as base:
            result = invoke("up", "--dir", str(new), "--replicas", "1", "--base-port",
                            str(base), "--cnf-dir", str(nowhere))
    finally:
        os.close(fd)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        f"Error: another `local up` is creating {new}; wait for it, then run `local status`"
    ]
    assert list(new.iterdir()) == []



def test_a_pod_kept_down_shows_as_stopped(tmp_path: Path) -> None:
    supervised = SupervisorPodState(alive=False, pid=None, ready=False, kept_down=True)
    seen = PodObservation(0, alive=False, ready=False, record=PodRecord(11, 0, Phase.STOPPED),
                          supervised=supervised, kept_down=True)
    (pod,) = set_view(SetSpec(replicas=1), SetLayout(tmp_path), [seen], None, NOW).pods
    assert (pod.phase, pod.kept_down) == (Phase.STOPPED, True)
    assert pod.reason == "kept down by `local stop`; `local start` brings it back"


def test_stop_and_start_refuse_a_pod_outside_the_set(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(SetSpec(replicas=2, base_port=22500).to_json())
    for command in ("stop", "start"):
        result = invoke(command, "--dir", str(tmp_path), "2")
        assert result.exit_code == 2, result.output
        assert "mysql-2 is not in the set (replicas: 2)" in result.output
    assert not (tmp_path / "pods").exists()


def test_start_without_a_supervisor_says_so_and_keeps_the_pod_down(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(SetSpec(replicas=2, base_port=22500).to_json())
    stopped = invoke("stop", "--dir", str(tmp_path), "1")
    assert stopped.exit_code == 0, stopped.output
    assert "stays down when `local up` resumes the set" in stopped.output
    started = invoke("start", "--dir", str(tmp_path), "1")
    assert started.exit_code == 2
    assert "no supervisor runs" in started.output
    assert (tmp_path / "pods" / "mysql-1" / "keep-down").exists()


def test_status_shows_the_store_and_the_restore_source(tmp_path: Path) -> None:
    assert (document(tmp_path)["store"], document(tmp_path)["restored_from"]) == ("", "")
    spec = SetSpec(replicas=1, base_port=22300, store="file:///bk", restore_from="file:///a@x")
    doc = status_document(set_view(spec, SetLayout(tmp_path), [], supervisor_pid=None, now=NOW))
    assert (doc["store"], doc["restored_from"]) == ("file:///bk", "file:///a@x")


def test_up_refuses_another_store_for_a_set_that_has_one(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(
        SetSpec(replicas=1, base_port=22500, store=f"file://{tmp_path}/a").to_json())
    result = invoke("up", "--dir", str(tmp_path), "--store", f"file://{tmp_path}/b")
    assert result.exit_code == 2
    assert f"created with --store file://{tmp_path}/a" in result.output


def test_backup_of_a_set_without_a_store_fails_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(SetSpec(replicas=1, base_port=22500).to_json())
    result = invoke("backup", "--dir", str(tmp_path))
    assert result.exit_code == 2
    assert "has no store" in result.output and len(result.output.strip().splitlines()) == 1


def test_restore_into_an_existing_set_fails_before_the_store_is_read(tmp_path: Path) -> None:
    (tmp_path / "spec.json").write_text(SetSpec(replicas=1, base_port=22500).to_json())
    result = invoke("restore", "--dir", str(tmp_path), "--from", "file:///nonexistent")
    assert result.exit_code == 2
    assert "already a local set" in result.output


def test_a_restored_set_cannot_archive_into_the_store_it_came_from(tmp_path: Path) -> None:
    from mysqlsts.local.spec import SetLayout, SetSpec
    from mysqlsts.local.store import write_spec

    layout = SetLayout(tmp_path / "restored")
    layout.root.mkdir()
    write_spec(layout, SetSpec(replicas=1, restore_from="file:///backups@20261204T101010Z-abcdef"))
    result = invoke("up", "--dir", str(layout.root), "--store", "file:///backups/")
    assert result.exit_code == 2
    assert "cannot archive into the store it was restored from" in result.output
