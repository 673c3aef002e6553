"""RBAC: the (resource, verb, name) requests the controller sent in every API scenario of a
variant, per namespace, against the rules the manifests grant, in both directions: nothing
missing (the controller would be refused), nothing extra (more power than it uses). A rule with
resourceNames allows only requests naming one of them, as RBAC does. The scenarios run the set
in `db`; the manifests name the set's namespace in one place (the Deployment's
MYSQLSTS_TAKEOVER_NAMESPACE), and the requests are compared as if made there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kmock
import pytest
import yaml
from takeover_cluster import SET_NS, calls
from takeover_scenarios import VARIANT_SCENARIOS
from validating_server import ValidatingApiServer

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = REPO / "k8s" / "components"
CLUSTER = "*"  # scope of a ClusterRole rule, or of a request to a cluster-scoped resource
ANY = "*"  # a rule without resourceNames; a request without a name (list, create)

# scope (namespace or CLUSTER), apiGroup, resource, verb, name (ANY: no resourceNames)
Grant = tuple[str, str, str, str, str]


def render(variant: str, tmp_path: Path) -> list[dict[str, Any]]:
    components = ["takeover"] if variant == "takeover" else ["takeover", variant]
    root = tmp_path / variant
    root.mkdir()
    (root / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "components": [os.path.relpath(COMPONENTS / c, root) for c in components]}))
    kubectl = Path(sys.executable).parent / "kubectl"
    done = subprocess.run([str(kubectl), "kustomize", str(root)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def granted(docs: list[dict[str, Any]]) -> set[Grant]:
    """What the takeover's ServiceAccount may do: bound roles' rules, with their scope."""
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
             for d in docs if d["kind"] in ("Role", "ClusterRole")}
    out: set[Grant] = set()
    for binding in (d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "mysqlsts-takeover",
                                        "namespace": "mysqlsts-takeover"}]
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace")
        role = roles[(ref["kind"], namespace if ref["kind"] == "Role" else None, ref["name"])]
        scope = namespace if binding["kind"] == "RoleBinding" else CLUSTER
        for rule in role["rules"]:
            assert "nonResourceURLs" not in rule and "*" not in rule["verbs"]
            names = rule.get("resourceNames") or [ANY]
            out |= {(scope, g, r, v, n) for g in rule["apiGroups"] for r in rule["resources"]
                    for v in rule["verbs"] for n in names}
    return out


def allowed(grants: set[Grant], request: Grant) -> Grant | None:
    """The grant that allows `request`, or None."""
    scope, group, resource, verb, name = request
    for where in (scope, CLUSTER):
        for named in ((ANY, name) if name != ANY else (ANY,)):
            if (where, group, resource, verb, named) in grants:
                return (where, group, resource, verb, named)
    return None


def set_namespace(docs: list[dict[str, Any]]) -> str:
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return str(next(e["value"] for e in container["env"]
                    if e["name"] == "MYSQLSTS_TAKEOVER_NAMESPACE"))


@pytest.mark.asyncio
@pytest.mark.parametrize("variant", sorted(VARIANT_SCENARIOS))
async def test_roles_match_the_requests(variant: str, tmp_path: Path) -> None:
    docs = render(variant, tmp_path)
    where = set_namespace(docs)

    def moved(name: str | None) -> str | None:
        return where if name == SET_NS else name

    sent: set[Grant] = set()
    for scenario in VARIANT_SCENARIOS[variant]:
        async with ValidatingApiServer() as server, kmock.Server(server):
            await scenario(server)
            sent |= {(moved(c.namespace) or CLUSTER, c.group, c.resource, c.verb,
                      (moved(c.name) if c.resource == "namespaces" else c.name) or ANY)
                     for c in calls(server)}
    grants = granted(docs)
    missing = sorted(r for r in sent if allowed(grants, r) is None)
    assert not missing, f"{variant}: the controller sends requests its roles refuse: {missing}"
    used = {allowed(grants, r) for r in sent}
    extra = sorted(grants - used)
    assert not extra, f"{variant}: roles grant what the controller never uses: {extra}"


def test_a_named_rule_refuses_other_names() -> None:
    """The comparison itself: resourceNames bind, and a cluster rule covers every namespace."""
    grants: set[Grant] = {("own", "coordination.k8s.io", "leases", "get", "mine"),
                          (CLUSTER, "", "nodes", "list", ANY)}
    assert allowed(grants, ("own", "coordination.k8s.io", "leases", "get", "mine"))
    assert not allowed(grants, ("own", "coordination.k8s.io", "leases", "get", "theirs"))
    assert not allowed(grants, ("other", "coordination.k8s.io", "leases", "get", "mine"))
    assert allowed(grants, (CLUSTER, "", "nodes", "list", ANY))
