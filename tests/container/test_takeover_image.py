"""The takeover controller's image: the command the Deployment runs, as a non-root user, with
the Kubernetes client it needs; a cluster it cannot use is one line, not a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from container_pods import Engine, start_container
from docker.types import Mount


def run(image: str, command: list[str], **kwargs: Any) -> tuple[int, str, str]:
    container = start_container(image, None, command=command, label="takeover", **kwargs)
    try:
        status = container.wait(timeout=120)
        out = container.logs(stderr=False).decode(errors="replace")
        err = container.logs(stdout=False).decode(errors="replace")
        return int(status["StatusCode"]), out, err
    finally:
        container.remove(force=True)


def test_image_runs_takeover_as_non_root(engine: Engine, takeover_image: str) -> None:
    config = engine.client.images.get(takeover_image).attrs["Config"]
    assert config["User"] == "999:999"  # the Deployment's runAsUser/runAsGroup
    assert config["Entrypoint"] == ["mysqlsts"]
    assert config["Cmd"] == ["takeover"]

    code, out, err = run(takeover_image, ["takeover", "--help"])
    assert code == 0, err
    assert "Move the set's pods off a node that is really down" in out
    assert "--once" in out and "MYSQLSTS_TAKEOVER_ACTION" in out

    # Non-root, nothing of the build left, and the client (binary wheels included) imports.
    code, out, err = run(takeover_image, ["-c", "; ".join([
        "import os, shutil, sys",
        "sys.path.insert(0, '/opt/mysqlsts/lib')",
        "import kubernetes, pydantic_core, yaml, mysqlsts.takeover.kube",
        "found = [t for t in ('mariadbd', 'mariadb', 'mariabackup') if shutil.which(t)]",
        "print(os.getuid(), os.getgid(), os.path.exists('/tmp/wheels'), kubernetes.__file__,"
        " found)",
    ])], entrypoint=["mysqlsts-python"])
    assert code == 0, err
    uid, gid, leftover, client, database = out.split(maxsplit=4)
    assert (uid, gid, leftover) == ("999", "999", "False"), out
    assert client.startswith("/opt/mysqlsts/lib/kubernetes/"), out
    # Python and the `kube` extra only: nothing of the database's base (that made it 596 MB).
    assert database.strip() == "[]", out
    size = engine.client.images.get(takeover_image).attrs["Size"]
    assert size < 350_000_000, f"{size / 1e6:.0f} MB"


def test_once_without_a_usable_cluster_is_one_line(
    engine: Engine, takeover_image: str, tmp_path: Path
) -> None:
    # No kubeconfig and not in a pod: a configuration error.
    code, out, err = run(takeover_image, ["takeover", "--once"])
    assert code == 2, out + err
    assert err.strip().startswith("Error: no cluster to talk to"), err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err

    # A kubeconfig whose server is the container's own loopback, where nothing listens.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "me", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "me"}}],
    }))
    kubeconfig.chmod(0o644)
    code, out, err = run(
        takeover_image, ["takeover", "--once"], environment={"KUBECONFIG": "/kube/config"},
        mounts=[Mount("/kube/config", str(kubeconfig), type="bind", read_only=True)],
        network_mode="none",
    )
    assert code == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("Error: the Kubernetes API failed: ") and "refused" in lines[0], err
    assert out == ""
