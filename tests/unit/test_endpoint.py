"""HOST:PORT parsing, shared by --donor, --primary and the isolation API endpoint."""

from __future__ import annotations

import pytest

from mysqlsts.core.endpoint import host_port


@pytest.mark.parametrize(("text", "expected"), [
    ("mysql-1.mysql:3307", ("mysql-1.mysql", 3307)),
    ("127.0.0.1:1", ("127.0.0.1", 1)),
    ("[::1]:65535", ("[::1]", 65535)),
])
def test_host_and_port(text: str, expected: tuple[str, int]) -> None:
    assert host_port(text) == expected


@pytest.mark.parametrize("text", ["", "mysql-0", ":3306", "host:", "host:0", "host:65536",
                                  "host:-1", "host:33o6", "auto"])
def test_anything_else_is_none(text: str) -> None:
    assert host_port(text) is None
