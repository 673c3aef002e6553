"""The local pod plan: the same commands and env a StatefulSet pod gets, on loopback ports."""

from pathlib import Path

import pytest

from mysqlsts.errors import ConfigError
from mysqlsts.local.plan import merged_env, plan_pod
from mysqlsts.local.pod import PodRunner
from mysqlsts.local.spec import SetLayout, SetSpec

TOOL = ("/venv/bin/mysqlsts",)


@pytest.fixture
def layout(tmp_path: Path) -> SetLayout:
    return SetLayout(tmp_path / "set")


def test_ordinal_ports_follow_the_stride(layout: SetLayout) -> None:
    spec = SetSpec(replicas=3, base_port=22000, port_stride=10)
    address = plan_pod(spec, layout, 2, TOOL).address
    assert (address.host, address.mysql_port, address.clone_port, address.http_port) == (
        "127.0.0.1", 22020, 22021, 22022,
    )


def test_env_is_the_statefulset_env_pointed_at_the_set(layout: SetLayout) -> None:
    spec = SetSpec(replicas=2, base_port=22100)
    env = plan_pod(spec, layout, 1, TOOL).env
    assert env["MYSQLSTS_POD_NAME"] == "mysql-1"
    assert env["MYSQLSTS_PEER_HOST_TEMPLATE"] == "127.0.0.1"
    # Ordinal 0's ports: each command applies the stride itself through PeerDirectory.
    assert (env["MYSQLSTS_MYSQL_PORT"], env["MYSQLSTS_CLONE_PORT"], env["MYSQLSTS_HTTP_PORT"]) == (
        "22100", "22101", "22102",
    )
    assert env["MYSQLSTS_PEER_PORT_STRIDE"] == "10"
    assert env["MYSQLSTS_SRV_NAME"] == ""
    assert env["MYSQLSTS_DATA_DIR"] == str(layout.root / "pods" / "mysql-1" / "data")
    assert env["MYSQLSTS_CONF_DIR"] == str(layout.root / "pods" / "mysql-1" / "conf.d")
    assert env["MYSQLSTS_CONFIG_MAP_DIR"] == str(layout.root / "config-map")
    assert env["MYSQLSTS_CLONE_TOKEN_FILE"] == str(layout.root / "secrets" / "clone-token")
    # Secrets travel as file paths only.
    assert all(not key.endswith("PASSWORD") and key != "MYSQLSTS_CLONE_TOKEN" for key in env)


def test_primary_bootstraps_replicas_never_do(layout: SetLayout) -> None:
    spec = SetSpec(replicas=2)
    primary = plan_pod(spec, layout, 0, TOOL)
    replica = plan_pod(spec, layout, 1, TOOL)
    assert [s.name for s in primary.init_steps] == ["init", "clone", "bootstrap"]
    assert [s.name for s in replica.init_steps] == ["init", "clone"]
    assert replica.init_steps[1].argv == (*TOOL, "clone")
    assert replica.sidecar.argv == (*TOOL, "sidecar")


def test_server_spec_uses_the_pod_volume(layout: SetLayout) -> None:
    server = plan_pod(SetSpec(replicas=2, base_port=22000), layout, 1, TOOL).server
    assert server.port == 22010
    assert server.data_dir == layout.pod("mysql-1").data
    assert server.error_log == layout.pod("mysql-1").logs / "mariadbd.err"


def test_the_server_runs_under_the_watchdog_with_a_heartbeat_file_per_pod(
        layout: SetLayout) -> None:
    """As the mysql container does: `mysqlsts server -- <mariadbd's arguments>`; the pod's
    env (every container's) names the heartbeat file in its own run dir."""
    plan = plan_pod(SetSpec(replicas=2), layout, 1, TOOL)
    argv = plan.server_step.argv
    assert argv[:len(TOOL) + 2] == (*TOOL, "server", "--")
    assert f"--defaults-file={plan.server.defaults_file}" in argv
    assert plan.env["MYSQLSTS_WATCHDOG_FILE"] == str(
        layout.pod("mysql-1").run / "watchdog-heartbeat")


def test_merged_env_drops_stray_mysqlsts_variables() -> None:
    merged = merged_env(
        {"PATH": "/bin", "MYSQLSTS_DATA_DIR": "/elsewhere", "POD_NAME": "x-9",
         "MYSQLSTS_LOG_LEVEL": "debug"},
        {"MYSQLSTS_POD_NAME": "mysql-0"},
    )
    assert merged == {"PATH": "/bin", "MYSQLSTS_LOG_LEVEL": "debug",
                      "MYSQLSTS_POD_NAME": "mysql-0"}


def test_every_pod_process_is_a_new_lease_holder_of_the_sets_one_lease(layout: SetLayout) -> None:
    spec = SetSpec(replicas=2, base_port=22000)
    plans = [plan_pod(spec, layout, n, TOOL) for n in (0, 1)]
    assert {p.env["MYSQLSTS_PRIMARY_LEASE"] for p in plans} == {f"file:{layout.primary_lease}"}
    inherited = {"PATH": "/bin", "POD_UID": "the-shells", "MYSQLSTS_LEASE_DURATION": "6"}
    first, second = (PodRunner(plans[0], layout.pod("mysql-0"), inherited) for _ in range(2))
    # A new incarnation id per pod process (as a re-created pod gets a new uid), never the
    # caller's; the lease timings pass through as the log level does (tests shorten them).
    assert first.env["POD_UID"] != second.env["POD_UID"]
    assert "the-shells" not in (first.env["POD_UID"], second.env["POD_UID"])
    assert first.env["MYSQLSTS_LEASE_DURATION"] == "6"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicas": 3, "base_port": 65530}, "outside 1024..65535"),
        ({"replicas": 1, "base_port": 80}, "outside 1024..65535"),
        ({"replicas": 2, "port_stride": 2}, "too small"),
        ({"replicas": -1}, "replicas"),
    ],
)
def test_bad_specs_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SetSpec(**kwargs)


def test_spec_round_trips_through_json() -> None:
    spec = SetSpec(replicas=4, base_port=22200, port_stride=20)
    assert SetSpec.from_json(spec.to_json()) == spec
    with pytest.raises(ConfigError):
        SetSpec.from_json('{"replicas": 1, "colour": "blue"}')


def test_a_restored_set_restores_mysql_0_only(layout: SetLayout) -> None:
    spec = SetSpec(replicas=2, restore_from="file:///bk@20261204T184553Z-0a1b2c")
    assert plan_pod(spec, layout, 0, TOOL).env["MYSQLSTS_FROM_BACKUP"] == spec.restore_from
    assert "MYSQLSTS_FROM_BACKUP" not in plan_pod(spec, layout, 1, TOOL).env
    assert "MYSQLSTS_FROM_BACKUP" not in plan_pod(SetSpec(replicas=1), layout, 0, TOOL).env


def test_a_set_recovered_to_a_point_gives_mysql_0_only_the_target(layout: SetLayout) -> None:
    spec = SetSpec(replicas=2, restore_from="file:///bk", restore_to_gtid="0-100-42")
    env = plan_pod(spec, layout, 0, TOOL).env
    assert (env["MYSQLSTS_FROM_BACKUP"], env["MYSQLSTS_TO_GTID"]) == ("file:///bk", "0-100-42")
    assert "MYSQLSTS_TO_TIME" not in env
    assert "MYSQLSTS_TO_GTID" not in plan_pod(spec, layout, 1, TOOL).env
    timed = SetSpec(replicas=1, restore_from="file:///bk", restore_to_time="2026-12-04T10:00:00Z")
    assert plan_pod(timed, layout, 0, TOOL).env["MYSQLSTS_TO_TIME"] == "2026-12-04T10:00:00Z"
    assert SetSpec.from_json(timed.to_json()) == timed


def test_a_spec_from_before_stores_reads_as_one_without() -> None:
    spec = SetSpec.from_json('{"replicas": 2, "base_port": 22000}')
    assert (spec.store, spec.restore_from) == ("", "")


def test_a_set_with_a_store_archives_from_every_pod_through_the_sidecars_env(
        layout: SetLayout) -> None:
    store = "file:///tmp/some-store"
    for replicas, patience in ((1, "0.0"), (2, "3.0"), (3, "3.0")):
        spec = SetSpec(replicas=replicas, store=store)
        for n in range(replicas):
            env = plan_pod(spec, layout, n, TOOL).env
            assert env["MYSQLSTS_ARCHIVE_STORE"] == store
            # The default patience (replicas archive first) needs no variable; a one-pod
            # set's primary contends at once.
            assert env.get("MYSQLSTS_ARCHIVE_PRIMARY_PATIENCE", "3.0") == patience
    for replicas in (1, 2):  # no store: no archive, and no variable of it
        env = plan_pod(SetSpec(replicas=replicas), layout, 0, TOOL).env
        assert not any(key.startswith("MYSQLSTS_ARCHIVE_") for key in env)
