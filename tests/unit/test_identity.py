import pytest

from mysqlsts.core.identity import SERVER_ID_MAX, Role, identify, parse_pod_name, server_id_for
from mysqlsts.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mysql-0", ("mysql", 0)),
        ("mysql-2", ("mysql", 2)),
        ("my-db-set-17", ("my-db-set", 17)),
        ("db2-10", ("db2", 10)),
    ],
)
def test_pod_name_splits_into_statefulset_and_ordinal(name, expected):
    assert parse_pod_name(name) == expected


@pytest.mark.parametrize(
    "name", ["mysql", "mysql-", "mysql-a", "-1", "MySQL-1", "mysql-1.mysql", ""]
)
def test_pod_name_without_trailing_ordinal_is_rejected(name):
    with pytest.raises(ConfigError, match="does not end in -<ordinal>"):
        parse_pod_name(name)


def test_server_id_is_base_plus_ordinal():
    assert server_id_for(2, 100) == 102
    assert identify("mysql-3", "mysql", 100).server_id == 103


def test_server_id_overflow_is_rejected():
    assert server_id_for(0, SERVER_ID_MAX) == SERVER_ID_MAX
    with pytest.raises(ConfigError, match="outside"):
        server_id_for(1, SERVER_ID_MAX)
    with pytest.raises(ConfigError, match="outside"):
        parse_and_identify("mysql-99999999999")


def parse_and_identify(name):
    return identify(name, "mysql", 100)


def test_ordinal_zero_is_primary_others_replicas():
    assert identify("mysql-0", "mysql", 100).role is Role.PRIMARY
    assert identify("mysql-1", "mysql", 100).role is Role.REPLICA


def test_report_host_is_stable_dns_name():
    assert identify("mysql-2", "mysql", 100).report_host == "mysql-2.mysql"


@pytest.mark.parametrize("name", ["mysql-0\n", "mysql-0\nlog_bin=x", "a" * 62 + "-1"])
def test_pod_name_must_be_a_whole_dns_label(name):
    with pytest.raises(ConfigError, match="not a DNS label"):
        parse_pod_name(name)


@pytest.mark.parametrize("service", ["mysql\n", "mysql\n[mysqld]\nskip-grant-tables", "My",
                                     "svc.ns", "", "-x", "a" * 64])
def test_service_must_be_a_dns_label(service):
    with pytest.raises(ConfigError, match="not a DNS label"):
        identify("mysql-1", service, 100)
