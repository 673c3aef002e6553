"""Options are defined once (options.py): help, env var and default per flag; groups round-trip
through the environment a pod is given."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from mysqlsts.cli import cli
from mysqlsts.local.plan import pod_env
from mysqlsts.local.spec import SetLayout, SetSpec
from mysqlsts.options import (
    CloneOptions,
    ConsistencyOptions,
    DataDirOptions,
    DonorOptions,
    FlavorOptions,
    HeartbeatOptions,
    InitOptions,
    IsolationOptions,
    ListenOptions,
    LocalServerOptions,
    LoopOptions,
    PeerOptions,
    PodOptions,
    PrimaryLeaseOptions,
    ReplicationOptions,
    RootPasswordOptions,
    SecretOptions,
    StreamOptions,
    WatchdogOptions,
    option_fields,
    to_env,
    use,
)

SIDECAR_GROUPS = (LoopOptions, ReplicationOptions, HeartbeatOptions, DonorOptions, StreamOptions,
                  IsolationOptions, ConsistencyOptions, WatchdogOptions)
GROUPS = (PodOptions, PeerOptions, DataDirOptions, FlavorOptions, RootPasswordOptions,
          SecretOptions, LocalServerOptions, InitOptions, CloneOptions, ListenOptions,
          *SIDECAR_GROUPS)


def _parse(env: dict[str, str]) -> dict[str, Any]:
    """Every group as a command built with `use` receives it, from `env` alone."""
    seen: dict[str, Any] = {}

    def command(**groups: Any) -> None:
        seen.update(groups)

    for index, group in enumerate(GROUPS):
        command = use(group, f"g{index}")(command)
    result = CliRunner().invoke(click.command()(command), [], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {type(value).__name__: value for value in seen.values()}


@pytest.mark.parametrize("name", ["init", "bootstrap", "clone", "sidecar", "server"])
def test_every_pod_command_option_has_help_and_names_its_env_var(name: str) -> None:
    command = cli.get_command(click.Context(cli), name)
    assert command is not None
    options = [p for p in command.params if isinstance(p, click.Option) and p.name != "help"]
    assert options
    for option in options:
        assert option.help, option.name
        assert option.show_envvar and str(option.envvar).count("MYSQLSTS_"), option.name
    text = " ".join(CliRunner().invoke(cli, [name, "--help"]).output.split())
    assert text.count("env var: MYSQLSTS_") == len(options)


def test_group_defaults_are_the_option_defaults() -> None:
    parsed = _parse({"POD_NAME": "mysql-3"})
    for group in GROUPS:
        expected = group(pod_name="mysql-3") if group is PodOptions else group()
        assert parsed[group.__name__] == expected


def test_pod_env_round_trips_through_the_options(tmp_path: Path) -> None:
    spec, layout = SetSpec(replicas=3, base_port=23000, service="db"), SetLayout(tmp_path)
    env = pod_env(spec, layout, 2)
    parsed = _parse(env)
    assert parsed["PodOptions"].identity().pod_name == "mysql-2"
    assert parsed["PodOptions"].service == "db"
    peers = parsed["PeerOptions"].directory(parsed["PodOptions"].identity())
    assert peers == spec.peers() and peers.address(2).http_port == 23022
    assert parsed["DataDirOptions"].data_dir == layout.pod("mysql-2").data
    assert parsed["CloneOptions"].srv_name == ""
    assert parsed["ListenOptions"].listen_address == "127.0.0.1"
    assert parsed["SecretOptions"].clone_token_file == layout.secret("clone-token")
    # Every pod of the set contends for one file lease (the default, kubernetes, is for pods).
    lease = PrimaryLeaseOptions(primary_lease=env.pop("MYSQLSTS_PRIMARY_LEASE"))
    assert lease.file == layout.primary_lease == tmp_path / "primary-lease.json"
    assert pod_env(spec, layout, 0)["MYSQLSTS_PRIMARY_LEASE"] == f"file:{lease.file}"
    # Nothing set to its default travels: the env holds what differs, nothing else.
    assert to_env(*(parsed[g.__name__] for g in GROUPS)) == env


def test_to_env_skips_defaults_and_names_each_variable() -> None:
    assert to_env(LoopOptions(), DonorOptions()) == {}
    assert to_env(LoopOptions(max_lag=5.0), DonorOptions(no_donor=True)) == {
        "MYSQLSTS_MAX_LAG": "5.0", "MYSQLSTS_NO_DONOR": "True",
    }
    assert to_env(CloneOptions(prepare_memory="1G")) == {"MYSQLSTS_CLONE_PREPARE_MEMORY": "1G"}


def test_the_clone_stream_options_come_from_their_variables() -> None:
    parsed = _parse({"POD_NAME": "mysql-1", "MYSQLSTS_CLONE_MAX_RATE": "50000000",
                     "MYSQLSTS_CLONE_COMPRESSION": "none"})
    assert parsed["DonorOptions"].clone_max_rate == 50e6
    assert parsed["StreamOptions"].clone_compression == "none"
    assert _parse({"POD_NAME": "mysql-1"})["DonorOptions"].clone_max_rate is None


@pytest.mark.parametrize(("env", "words"), [
    ({"MYSQLSTS_CLONE_COMPRESSION": "lz4"}, "clone-compression"),
    ({"MYSQLSTS_CLONE_MAX_RATE": "0"}, "clone-max-rate"),
    ({"MYSQLSTS_CLONE_MAX_RATE": "fast"}, "clone-max-rate"),
])
def test_bad_clone_stream_values_are_refused_by_the_sidecar(env: dict[str, str],
                                                            words: str) -> None:
    result = CliRunner().invoke(cli, ["sidecar"], env={"POD_NAME": "mysql-1", **env})
    assert result.exit_code == 2 and words in result.output


def test_each_default_is_stated_once() -> None:
    """The sidecar's settings hold the option groups whole, so every default is the option's:
    nothing between the flag and the part that reads it restates or copies a field."""
    from mysqlsts.sidecar.settings import SidecarSettings

    factories = {f.default_factory for f in dataclasses.fields(SidecarSettings)}
    for group in SIDECAR_GROUPS:
        assert group in factories, group.__name__
    names = [f.name for group in SIDECAR_GROUPS for f in dataclasses.fields(group)]
    assert len(names) == len(set(names)), "a field name in two groups"
    settings = {f.name for f in dataclasses.fields(SidecarSettings)}
    assert not settings & set(names), "a group's field copied into SidecarSettings"


def test_plain_fields_of_a_group_have_no_flag_and_no_variable() -> None:
    """Tunables without a flag (tests shorten them) are left at their defaults by the command
    line and never travel in a pod's environment."""
    flags = {f.name for f in option_fields(ConsistencyOptions)}
    assert flags == {"consistency_check_interval", "consistency_chunk_rows",
                     "consistency_duty_cycle"}
    assert to_env(ConsistencyOptions(poll=0.5, consistency_chunk_rows=10)) == {
        "MYSQLSTS_CONSISTENCY_CHUNK_ROWS": "10"}
    parsed = _parse({"POD_NAME": "mysql-1", "MYSQLSTS_POLL": "0.5"})
    assert parsed["ConsistencyOptions"].poll == ConsistencyOptions().poll


def test_bad_loop_and_heartbeat_values_are_one_line(tmp_path: Path) -> None:
    from mysqlsts.errors import ConfigError

    with pytest.raises(ConfigError, match="max-lag must be positive"):
        LoopOptions(max_lag=0).check()
    with pytest.raises(ConfigError, match="heartbeat database 'a-b'"):
        HeartbeatOptions(heartbeat_database="a-b").check()


def test_the_isolation_api_endpoint_is_host_port_or_empty() -> None:
    from mysqlsts.errors import ConfigError
    from mysqlsts.options import IsolationOptions

    IsolationOptions().check()
    IsolationOptions(isolation_api_endpoint="").check()  # empty: peers only
    for bad in ("kubernetes.default.svc", ":443", "api:0", "api:https"):
        with pytest.raises(ConfigError, match="must be host:port"):
            IsolationOptions(isolation_api_endpoint=bad).check()
    env = {"POD_NAME": "mysql-3", "MYSQLSTS_ISOLATION_API_ENDPOINT": ""}
    assert _parse(env)["IsolationOptions"].isolation_api_endpoint == ""


def _lease_options(env: dict[str, str]) -> Any:
    seen: dict[str, Any] = {}

    @click.command()
    @use(PrimaryLeaseOptions, "lease")
    def command(lease: PrimaryLeaseOptions) -> None:
        seen["lease"] = lease

    clean = {"KUBERNETES_SERVICE_HOST": None, "KUBERNETES_SERVICE_PORT": None,
             "POD_NAMESPACE": None}
    result = CliRunner().invoke(command, [], env={**clean, **env}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return seen["lease"]


def test_the_kubernetes_lease_takes_the_clusters_api_server_and_the_pods_namespace() -> None:
    lease = _lease_options({"MYSQLSTS_PRIMARY_LEASE": "kubernetes",
                            "KUBERNETES_SERVICE_HOST": "10.96.0.1",
                            "KUBERNETES_SERVICE_PORT": "443", "POD_NAMESPACE": "db"})
    assert (lease.kubernetes, lease.file) == ("mysql-primary", None)
    assert (lease.lease_api_url, lease.lease_namespace) == ("https://10.96.0.1:443", "db")
    lease = _lease_options({"MYSQLSTS_PRIMARY_LEASE": "kubernetes:db-primary",
                            "KUBERNETES_SERVICE_HOST": "fd00::1",
                            "MYSQLSTS_LEASE_NAMESPACE": "other", "POD_NAMESPACE": "db"})
    assert (lease.kubernetes, lease.lease_api_url) == ("db-primary", "https://[fd00::1]:443")
    assert lease.lease_namespace == "other"  # ours first, then the downward API's
    outside = _lease_options({})
    # The default: the Lease mysql-primary, with no API server outside a pod.
    assert (outside.lease_api_url, outside.kubernetes, outside.enabled) == (
        "", "mysql-primary", True)
    # The in-cluster default is a default: it never travels in a local pod's environment.
    assert to_env(outside) == {}
    assert to_env(PrimaryLeaseOptions(primary_lease="file:/x")) == {
        "MYSQLSTS_PRIMARY_LEASE": "file:/x"}


@pytest.mark.parametrize("value,api,words", [
    ("kubernetes:", "https://api:443", "'' is not a Kubernetes object name"),
    ("kubernetes:Mysql_Primary", "https://api:443", "is not a Kubernetes object name"),
    ("etcd:/x", "https://api:443", "must be none, kubernetes, kubernetes:NAME or file:PATH"),
    ("file:", "https://api:443", "must be none, kubernetes"),
    ("kubernetes", "http://api:8080", "lease API URL 'http://api:8080' must be https://"),
])
def test_bad_primary_lease_values_are_one_line(value: str, api: str, words: str) -> None:
    from mysqlsts.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(words)):
        PrimaryLeaseOptions(primary_lease=value, lease_api_url=api).check()
    PrimaryLeaseOptions(primary_lease="kubernetes:a.b-c", lease_api_url="https://api").check()


def test_an_empty_watchdog_file_means_no_watchdog() -> None:
    """The official-image overlays set MYSQLSTS_WATCHDOG_FILE empty: no heartbeat written."""
    assert _parse({"POD_NAME": "mysql-1"})["WatchdogOptions"].file == Path(
        "/run/mysqlsts/watchdog/heartbeat")
    assert _parse({"POD_NAME": "mysql-1", "MYSQLSTS_WATCHDOG_FILE": ""})[
        "WatchdogOptions"].file is None
    assert to_env(WatchdogOptions(watchdog_file="")) == {"MYSQLSTS_WATCHDOG_FILE": ""}
