"""The release workflow: actionlint-clean, and doing what docs/deploy.md says it does. It cannot
run here (no registry, no GitHub): this is all the checking it gets before a real tag."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from manifest_support import REPO, find_tool

pytestmark = pytest.mark.manifests

WORKFLOW = REPO / ".github" / "workflows" / "release.yml"


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    tool = find_tool("actionlint", "MYSQLSTS_ACTIONLINT")
    assert tool, "actionlint not found: pip install -e '.[test]'"
    return subprocess.run([tool, "-no-color", str(path)], capture_output=True, text=True,
                          timeout=120)


def workflow() -> dict[Any, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_actionlint_passes_and_would_catch_a_mistake(tmp_path: Path) -> None:
    done = actionlint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    broken = tmp_path / ".github" / "workflows" / "release.yml"
    broken.parent.mkdir(parents=True)
    shutil.copy(WORKFLOW, broken)
    broken.write_text(broken.read_text().replace("needs.version.outputs.version",
                                                 "needs.version.outputs.verison", 1))
    done = actionlint(broken)
    assert done.returncode != 0 and "verison" in done.stdout, done.stdout


def test_release_on_version_tags_for_both_architectures() -> None:
    flow = workflow()
    assert flow[True]["push"]["tags"] == ["v*.*.*"]  # YAML 1.1 reads `on` as True
    archs = {entry["arch"] for entry in flow["jobs"]["images"]["strategy"]["matrix"]["include"]}
    assert archs == {"amd64", "arm64"}
    text = WORKFLOW.read_text()
    assert "REGISTRY: ghcr.io/mysqlsts" in text  # the names the manifests pin
    assert "images/build.sh" in text  # the images `make images` builds and the tests test
    assert "tests/container" in text
    assert "kustomize edit set image" in text and "@$digest" in text
    assert 'if [ "v$version" != "$GITHUB_REF_NAME" ]' in text


def test_every_image_build_sh_builds_is_tested_pushed_and_pinned() -> None:
    """The loops over image kinds name all four, the takeover controller's included, and its
    digest is pinned where its Deployment lives (the takeover component, not the base)."""
    text = WORKFLOW.read_text()
    loops = [line.strip() for line in text.splitlines() if line.strip().startswith("for kind in")]
    assert len(loops) == 3, loops  # tag for the tests, push, multi-arch manifest
    assert all(loop == "for kind in server init sidecar takeover; do" for loop in loops), loops
    assert "components/takeover" in text and "kustomize edit set image" in text
