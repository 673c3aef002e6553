"""How the two API commands find their cluster, and the deadline every request carries."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from mysqlsts.errors import ConfigError
from mysqlsts.kubeapi import API_FAILURES, connect, describe_failure


def kubeconfig(path: Path, server: str, namespace: str | None = None) -> Path:
    context: dict[str, str] = {"cluster": "here", "user": "me"}
    if namespace:
        context["namespace"] = namespace
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "here",
        "clusters": [{"name": "here", "cluster": {"server": server}}],
        "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "here", "context": context},
                     {"name": "other", "context": {"cluster": "here", "user": "me",
                                                   "namespace": "elsewhere"}}],
    }))
    return path


def test_the_contexts_namespace_else_default(tmp_path: Path) -> None:
    config = kubeconfig(tmp_path / "a", "http://127.0.0.1:1", namespace="db")
    assert connect(kubeconfig=config).namespace == "db"
    assert connect(kubeconfig=config, context="other").namespace == "elsewhere"
    bare = kubeconfig(tmp_path / "b", "http://127.0.0.1:1")
    assert connect(kubeconfig=bare).namespace == "default"


def test_a_named_kubeconfig_that_cannot_load_is_an_error_not_a_fallback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load kubeconfig"):
        connect(kubeconfig=tmp_path / "missing")


def test_outside_a_pod_without_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    for in_cluster_first in (False, True):
        with pytest.raises(ConfigError, match="no cluster to talk to"):
            connect(in_cluster_first=in_cluster_first)


def test_every_request_has_the_deadline(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts into the backlog, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = kubeconfig(tmp_path / "k", f"http://127.0.0.1:{silent.getsockname()[1]}")
        api = connect(kubeconfig=config, request_timeout=0.5).api
        started = time.monotonic()
        with pytest.raises(API_FAILURES) as raised:
            client.CoreV1Api(api).list_namespaced_pod("db")  # no timeout of its own
        took = time.monotonic() - started
    assert took < 5, f"took {took:.1f}s"
    assert "timed out" in describe_failure(raised.value)
