"""API-level tests: the real `kubernetes` client over HTTP against kmock's fake API server
(pytest plugin `kmock`, one server per test), made to validate what kube-apiserver validates
(`validating_server.ValidatingApiServer`). The controller's blocking client runs in a worker
thread while the server serves on the test's event loop."""

from __future__ import annotations

from typing import Any

import pytest
from validating_server import ValidatingApiServer


@pytest.fixture()
def kmock_options(kmock_options: dict[str, Any]) -> dict[str, Any]:
    return {**kmock_options, "cls": ValidatingApiServer}
