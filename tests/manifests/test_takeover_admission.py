"""The takeover's ValidatingAdmissionPolicy (k8s/components/takeover/admission.yaml), evaluated
with a CEL interpreter (cel-python) against Node updates: the writes the controller really
makes (its own patch bodies, applied as the API server merges them) are admitted; anything else
the takeover account could send with RBAC's `patch` is refused. The render itself is validated
against Kubernetes' schema by test_k8s_render.py."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import celpy  # type: ignore[import-untyped]
import pytest
import yaml
from kubernetes import client
from manifest_support import kustomize

from mysqlsts.takeover.kube import TakeoverApi
from mysqlsts.takeover.model import (
    FENCED_ANNOTATION,
    TAKEOVER_ANNOTATION,
    Action,
    ManualFence,
    NodeView,
    Record,
    Taint,
)

pytestmark = pytest.mark.manifests

Doc = dict[str, Any]
ACCOUNT = "system:serviceaccount:mysqlsts-takeover:mysqlsts-takeover"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UNREACHABLE = {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute",
               "timeAdded": "2026-03-01T11:55:00Z"}


def policy(rendered: dict[str, list[Doc]]) -> Doc:
    [found] = [d for d in rendered["takeover"] if d["kind"] == "ValidatingAdmissionPolicy"]
    [binding] = [d for d in rendered["takeover"]
                 if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"] == {"policyName": found["metadata"]["name"],
                               "validationActions": ["Deny"]}
    return found


def refusals(vap: Doc, old: Doc, new: Doc, user: str = ACCOUNT) -> list[str]:
    """The messages of the validations that fail (empty: admitted), as kube-apiserver would
    evaluate them; nothing at all when the match condition leaves the request out."""
    env = celpy.Environment()
    activation = {"object": celpy.json_to_cel(new), "oldObject": celpy.json_to_cel(old),
                  "request": celpy.json_to_cel({"userInfo": {"username": user}})}
    for condition in vap["spec"]["matchConditions"]:
        if not env.program(env.compile(condition["expression"])).evaluate(activation):
            return []
    out = []
    for rule in vap["spec"]["validations"]:
        verdict = env.program(env.compile(rule["expression"])).evaluate(activation)
        assert isinstance(verdict, celpy.celtypes.BoolType), (rule["expression"], verdict)
        if not verdict:
            out.append(rule["message"])
    return out


def merged(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies the controller's patches."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value)
    return out


def node(annotations: dict[str, str] | None = None, taints: list[Doc] | None = None) -> Doc:
    doc: Doc = {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-b", "uid": "uid-node-b", "resourceVersion": "7",
                     "labels": {"kubernetes.io/hostname": "node-b"},
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                     **(annotations or {})}},
        "spec": {"podCIDR": "10.244.1.0/24"},
    }
    if taints:
        doc["spec"]["taints"] = taints
    return doc


class Recorder:
    """Stands in for CoreV1Api: keeps the bodies the controller's adapter would send."""

    def __init__(self) -> None:
        self.patches: list[Doc] = []

    def patch_node(self, name: str, body: Doc, **_: Any) -> None:
        self.patches.append(body)


def sent(write: str, before: Doc) -> Doc:
    """The Node after the controller's own `write` is merged into `before`."""
    api = TakeoverApi(client.ApiClient(), namespace="db", selector="", statefulset="mysql",
                      own_namespace="x", lease_name="x", identity="x", read_attachments=False,
                      primary_lease_name="x")
    recorder = Recorder()
    api.core = recorder
    meta, spec = before["metadata"], before["spec"]
    view = NodeView("node-b", "Unknown", NOW, None, dict(meta["labels"]),
                    dict(meta["annotations"]),
                    tuple(Taint(t["key"], t.get("value"), t["effect"], t.get("timeAdded"))
                          for t in spec.get("taints", [])), meta["resourceVersion"],
                    meta["uid"])
    {"taint": lambda: api.taint(view, NOW), "untaint": lambda: api.untaint(view),
     "unfence": lambda: api.unfence(view),
     "record": lambda: api.record(view, Action.DELETE_PODS, NOW)}[write]()
    [body] = recorder.patches
    return dict(merged(before, body))


TAINTED = Record(Action.TAINT, NOW, taint_added=True).to_json()
OUT_OF_SERVICE = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown",
                  "effect": "NoExecute"}


@pytest.mark.parametrize(("write", "before"), [
    ("taint", node(taints=[UNREACHABLE])),
    ("taint", node()),
    ("untaint", node({TAKEOVER_ANNOTATION: TAINTED,
                      FENCED_ANNOTATION: ManualFence(NOW, "ann", NOW).to_json()},
                     [UNREACHABLE, OUT_OF_SERVICE])),
    ("unfence", node({FENCED_ANNOTATION: ManualFence(NOW, "ann", NOW).to_json()})),
    ("record", node()),
])
def test_the_controllers_own_writes_are_admitted(
    rendered: dict[str, list[Doc]], write: str, before: Doc
) -> None:
    after = sent(write, before)
    assert after != before
    assert refusals(policy(rendered), before, after) == []


def _changed(before: Doc, change: Any) -> Doc:
    after = copy.deepcopy(before)
    change(after)
    return after


@pytest.mark.parametrize(("what", "change", "message"), [
    ("a label", lambda n: n["metadata"]["labels"].update(role="db"), "labels"),
    ("a label removed", lambda n: n["metadata"]["labels"].clear(), "labels"),
    ("a foreign annotation", lambda n: n["metadata"]["annotations"].update(x="1"),
     "annotations"),
    ("a foreign annotation removed",
     lambda n: n["metadata"]["annotations"].pop("node.alpha.kubernetes.io/ttl"), "annotations"),
    ("another taint removed", lambda n: n["spec"].pop("taints"), "only the out-of-service"),
    ("another taint added", lambda n: n["spec"]["taints"].append(
        {"key": "dedicated", "value": "db", "effect": "NoSchedule"}), "only the out-of-service"),
    ("out-of-service with another effect", lambda n: n["spec"]["taints"].append(
        {"key": "node.kubernetes.io/out-of-service", "effect": "NoSchedule"}), "adds only"),
    ("cordoned", lambda n: n["spec"].update(unschedulable=True), "cordon"),
    ("a finalizer", lambda n: n["metadata"].update(finalizers=["x/y"]), "finalizers"),
])
def test_anything_else_is_refused(rendered: dict[str, list[Doc]], what: str, change: Any,
                                  message: str) -> None:
    before = node(taints=[UNREACHABLE])
    after = _changed(before, change)
    refused = refusals(policy(rendered), before, after)
    assert len(refused) == 1 and message in refused[0], (what, refused)


def test_other_accounts_are_not_concerned(rendered: dict[str, list[Doc]]) -> None:
    before = node()
    after = _changed(before, lambda n: n["metadata"]["labels"].update(role="db"))
    assert refusals(policy(rendered), before, after, user="kubernetes-admin") == []
    assert refusals(policy(rendered), before, after) != []


@pytest.mark.parametrize(("variant", "ships_policy"), [("takeover-delete-pods", False),
                                                       ("takeover-delete-node", True)])
def test_the_old_cluster_variant_leaves_the_policy_out(
    kubectl: str, k8s_copy: tuple[Path, dict[str, str]], variant: str, ships_policy: bool
) -> None:
    """takeover-delete-pods is for clusters older than 1.28, which have no v1 policy API: the
    component removes the policy and its binding; the other variant keeps them."""
    root, _ = k8s_copy
    overlay = root / "overlays" / f"admission-{variant}"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["../../base"],
        "components": ["../../secrets", "../../components/takeover",
                       f"../../components/{variant}"]}))
    kinds = {d["kind"] for d in kustomize(kubectl, overlay)}
    policy_kinds = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    assert (policy_kinds <= kinds) is ships_policy
    assert bool(policy_kinds & kinds) is ships_policy
