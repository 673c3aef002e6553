"""The takeover's adapter over the official `kubernetes` client: the only takeover module that
imports it (`mysqlsts.kubeapi` builds the client; `status` has its own adapter).

It turns API objects into the plain views of `model` and carries out decisions. Every write
carries what it changes and nothing more, and a precondition: node patches are JSON merge
patches with the Node's resourceVersion (a concurrent change makes it fail, never silently lose
a taint), Lease updates carry the read resourceVersion, deletes carry the uid they were decided
for (a replacement with the same name is never deleted).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mysqlsts.kubeapi import API_FAILURES, describe_failure
from mysqlsts.takeover.leader import Leadership, LeaseRecord
from mysqlsts.takeover.model import (
    FENCED_ANNOTATION,
    HISTORY_ANNOTATION,
    OUT_OF_SERVICE,
    PAUSE_ANNOTATION,
    TAKEOVER_ANNOTATION,
    Action,
    ClusterView,
    Decision,
    HistoryEntry,
    ManualFence,
    NodeView,
    PodView,
    PrimaryLease,
    Record,
    Taint,
    VolumeAttachmentView,
    VolumeSource,
    history_parse,
    history_to_json,
    primary_lease,
)

NODE_LEASE_NAMESPACE = "kube-node-lease"
# kube-apiserver accepts a legacy Event about a cluster-scoped object (a Node) only in `default`.
NODE_EVENT_NAMESPACE = "default"
COMPONENT = "mysqlsts-takeover"
# Only these pods hold a server: a Succeeded or Failed pod left behind holds nothing.
_LIVE_PHASES = ("Running", "Pending")
_MERGE_PATCH = "application/merge-patch+json"
_HOSTNAME_LABEL = "kubernetes.io/hostname"

ApiError = ApiException


def _micro_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version(info: Any) -> tuple[int, int]:
    # Managed clusters say e.g. minor "28+".
    return int(info.major.rstrip("+")), int(info.minor.rstrip("+"))


class NotDown(Exception):
    """`takeover fence` on a node whose kubelet still reports: nothing to confirm."""


@dataclass(frozen=True)
class Observation:
    view: ClusterView
    api_time: datetime | None  # the API server's Date header: the control plane's clock


def _api_time(headers: Any) -> datetime | None:
    date = (headers or {}).get("Date") or (headers or {}).get("date")
    if not date:
        return None
    try:
        return parsedate_to_datetime(str(date))
    except (TypeError, ValueError):
        return None


def _node_view(node: Any, lease_renewal: str | None) -> NodeView:
    meta, spec, status = node.metadata, node.spec, node.status
    conditions = (status.conditions if status else None) or []
    ready = next((c for c in conditions if c.type == "Ready"), None)
    taints = tuple(
        Taint(t.key, t.value, t.effect, _time(t.time_added) if t.time_added else None)
        for t in ((spec.taints if spec else None) or [])
    )
    return NodeView(
        name=meta.name,
        ready=ready.status if ready else "Unknown",
        ready_since=ready.last_transition_time if ready else None,
        lease_renewal=lease_renewal,
        labels=dict(meta.labels or {}),
        annotations=dict(meta.annotations or {}),
        taints=taints,
        resource_version=meta.resource_version or "",
        uid=meta.uid or "",
    )


def _pinned_to(pv: Any) -> tuple[str, ...]:
    """The nodes a PV lives on when it cannot follow a pod: local and hostPath volumes, by their
    required node affinity on the hostname label."""
    spec = pv.spec
    if spec is None or (spec.local is None and spec.host_path is None):
        return ()
    required = spec.node_affinity.required if spec.node_affinity else None
    nodes: list[str] = []
    for term in (required.node_selector_terms if required else None) or []:
        for expr in term.match_expressions or []:
            if expr.key == _HOSTNAME_LABEL and expr.operator == "In":
                nodes.extend(expr.values or [])
    return tuple(nodes)


# A PersistentVolumeSpec's fields that are not its volume source.
_PV_NOT_A_SOURCE = frozenset({
    "access_modes", "capacity", "claim_ref", "mount_options", "node_affinity",
    "persistent_volume_reclaim_policy", "storage_class_name", "volume_attributes_class_name",
    "volume_mode",
})


def _source(pv: Any) -> VolumeSource:
    """What serves a PV: its CSI driver, else the kind of its in-tree source (as the API
    spells it: nfs, rbd, iscsi, hostPath, awsElasticBlockStore, ...)."""
    spec = pv.spec
    if spec is not None and spec.csi is not None:
        return VolumeSource(pv.metadata.name, spec.csi.driver or "", csi=True)
    kinds = [json_name for name, json_name in (spec.attribute_map.items() if spec else ())
             if name not in _PV_NOT_A_SOURCE and name != "csi" and getattr(spec, name, None)]
    return VolumeSource(pv.metadata.name, kinds[0] if kinds else "unknown", csi=False)


def _as_sent(body: dict[str, Any]) -> Any:
    """A body sent as the dict it is: the client's models would re-render a MicroTime without
    its fraction when the microseconds are 0, which the API server rejects."""
    return body


def _taint_body(taints: Iterable[Taint]) -> list[dict[str, Any]]:
    out = []
    for t in taints:
        body: dict[str, Any] = {"key": t.key, "effect": t.effect}
        if t.value is not None:
            body["value"] = t.value
        if t.time_added is not None:
            body["timeAdded"] = t.time_added
        out.append(body)
    return out


def _owned_by(pod: Any, statefulset: str) -> bool:
    return any(ref.kind == "StatefulSet" and ref.name == statefulset and ref.controller
               for ref in (pod.metadata.owner_references or []))


class TakeoverApi:
    """The calls the takeover controller makes, named after what they mean."""

    def __init__(self, api: Any, *, namespace: str, selector: str, statefulset: str,
                 own_namespace: str, lease_name: str, identity: str,
                 read_attachments: bool, primary_lease_name: str) -> None:
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.storage = client.StorageV1Api(api)
        self.version = client.VersionApi(api)
        self.namespace = namespace
        self.selector = selector
        self.statefulset = statefulset
        self.own_namespace = own_namespace
        self.lease_name = lease_name
        self.identity = identity
        self.read_attachments = read_attachments
        self.primary_lease_name = primary_lease_name

    # --- observe -------------------------------------------------------------------------

    # The client's models type every field optional; the API server fills the ones read here,
    # so the objects are handled as Any rather than with a None check per field.

    def observe(self) -> Observation:
        """The cluster as one view. A failed read of the nodes, the pods or the namespace ends
        the pass (nothing can be decided without them); a failed read of one pod's volumes
        marks that pod unreadable, and only its node is skipped."""
        node_leases: list[Any] = self.coordination.list_namespaced_lease(NODE_LEASE_NAMESPACE).items
        leases = {lease.metadata.name: _micro_time(lease.spec.renew_time)
                  if lease.spec and lease.spec.renew_time else None for lease in node_leases}
        # (data, status, headers): the headers carry the API server's Date.
        listed, _, headers = self.core.list_node_with_http_info()
        api_nodes: list[Any] = listed.items
        nodes = tuple(_node_view(n, leases.get(n.metadata.name)) for n in api_nodes)
        unready = {n.name for n in nodes if n.ready != "True"}
        api_pods: list[Any] = self.core.list_namespaced_pod(
            self.namespace, label_selector=self.selector).items
        pods = tuple(self._pod_view(p, p.spec.node_name in unready) for p in api_pods
                     if (p.status and p.status.phase) in _LIVE_PHASES
                     and _owned_by(p, self.statefulset))
        namespace: Any = self.core.read_namespace(self.namespace)
        attachments: tuple[VolumeAttachmentView, ...] = ()
        if self.read_attachments:
            api_attachments: list[Any] = self.storage.list_volume_attachment().items
            attachments = tuple(
                VolumeAttachmentView(a.metadata.name, a.spec.node_name,
                                     a.spec.source.persistent_volume_name or "",
                                     a.metadata.uid or "")
                for a in api_attachments
            )
        view = ClusterView(
            nodes=nodes,
            pods=pods,
            version=_version(self.version.get_code()),
            paused=PAUSE_ANNOTATION in (namespace.metadata.annotations or {}),
            attachments=attachments,
            primary_lease=self.read_primary_lease(),
        )
        return Observation(view, _api_time(headers))

    def read_primary_lease(self) -> PrimaryLease:
        """The set's primary Lease (in the set's namespace). Missing or unreadable is a
        PrimaryLease with its problem: it then proves nothing, and only that is decided."""
        where = f"{self.namespace}/{self.primary_lease_name}"
        try:
            lease: Any = self.coordination.read_namespaced_lease(self.primary_lease_name,
                                                                 self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return PrimaryLease(where, problem=f"the primary Lease {where} does not exist")
            return PrimaryLease(where, problem=f"the primary Lease {where} could not be read: "
                                f"{describe_failure(exc)}")
        except API_FAILURES as exc:
            return PrimaryLease(where, problem=f"the primary Lease {where} could not be read: "
                                f"{describe_failure(exc)}")
        meta, spec = lease.metadata, lease.spec
        return primary_lease(
            where, holder=spec.holder_identity if spec else None,
            resource_version=meta.resource_version or "",
            duration_seconds=spec.lease_duration_seconds if spec else None,
            annotations=meta.annotations or {},
            written=(entry.time for entry in meta.managed_fields or []))

    def _pod_view(self, pod: Any, on_unready_node: bool) -> PodView:
        claims = tuple(v.persistent_volume_claim.claim_name for v in (pod.spec.volumes or [])
                       if v.persistent_volume_claim)
        volumes: list[str] = []
        pinned: list[str] = []
        sources: list[VolumeSource] = []
        unreadable = ""
        # Volumes only matter for pods that may move: read them for pods on unready nodes.
        try:
            for claim in claims if on_unready_node else ():
                pvc = self.core.read_namespaced_persistent_volume_claim(claim, self.namespace)
                if pvc.spec and pvc.spec.volume_name:
                    volumes.append(pvc.spec.volume_name)
                    pv = self.core.read_persistent_volume(pvc.spec.volume_name)
                    pinned.extend(_pinned_to(pv))
                    sources.append(_source(pv))
        except API_FAILURES as exc:
            unreadable = describe_failure(exc)
        return PodView(pod.metadata.namespace or self.namespace, pod.metadata.name,
                       pod.spec.node_name, claims, tuple(volumes), tuple(pinned),
                       uid=pod.metadata.uid or "", unreadable=unreadable,
                       sources=tuple(sources))

    # --- leader election -----------------------------------------------------------------

    def read_lease(self) -> LeaseRecord | None:
        try:
            lease: Any = self.coordination.read_namespaced_lease(self.lease_name,
                                                                 self.own_namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        spec = lease.spec
        return LeaseRecord(
            holder=spec.holder_identity if spec else None,
            renewed=spec.renew_time if spec else None,
            duration=timedelta(seconds=(spec.lease_duration_seconds or 0) if spec else 0),
            transitions=(spec.lease_transitions or 0) if spec else 0,
            resource_version=lease.metadata.resource_version or "",
            history=history_parse((lease.metadata.annotations or {}).get(HISTORY_ANNOTATION)),
        )

    def write_lease(self, step: Leadership, record: LeaseRecord | None, now: datetime,
                    duration: timedelta, history: tuple[HistoryEntry, ...] | None = None
                    ) -> LeaseRecord:
        """Create, renew or acquire the Lease (with `history`, when given, as its annotation);
        raises ApiException 409 when anyone wrote it since `record` was read. Returns the
        record as written, for the next compare-and-swap."""
        transitions = record.transitions if record else 0
        if step is Leadership.ACQUIRE:
            transitions += 1
        spec: dict[str, Any] = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(duration.total_seconds()),
            "renewTime": _micro_time(now),
            "leaseTransitions": transitions,
        }
        if step is not Leadership.RENEW:
            spec["acquireTime"] = _micro_time(now)
        metadata: dict[str, Any] = {}
        if history is not None:
            metadata["annotations"] = {HISTORY_ANNOTATION: history_to_json(history)}
        written: Any
        if step is Leadership.CREATE:
            metadata.update(name=self.lease_name, namespace=self.own_namespace)
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": metadata, "spec": spec}
            written = self.coordination.create_namespaced_lease(self.own_namespace,
                                                                _as_sent(body))
        else:
            assert record is not None
            # A merge patch carrying the read resourceVersion: a concurrent writer makes it fail.
            changes = {"metadata": {**metadata, "resourceVersion": record.resource_version},
                       "spec": spec}
            written = self.coordination.patch_namespaced_lease(
                self.lease_name, self.own_namespace, changes, _content_type=_MERGE_PATCH)
        kept = history if history is not None else (record.history if record else ())
        return LeaseRecord(self.identity, written.spec.renew_time, duration, transitions,
                           written.metadata.resource_version or "", kept)

    def release_lease(self, record: LeaseRecord | None) -> bool:
        """Give the Lease up if it is still as we last wrote it, so a standby leads at once
        rather than after the Lease's duration (client-go's ReleaseOnCancel). False: it was
        not ours any more."""
        if record is None or record.holder != self.identity:
            return False
        changes = {"metadata": {"resourceVersion": record.resource_version},
                   "spec": {"holderIdentity": None, "leaseDurationSeconds": 1}}
        self.coordination.patch_namespaced_lease(self.lease_name, self.own_namespace, changes,
                                                 _content_type=_MERGE_PATCH)
        return True

    # --- act -----------------------------------------------------------------------------

    def _patch_node(self, node: NodeView, changes: dict[str, Any]) -> None:
        changes.setdefault("metadata", {})["resourceVersion"] = node.resource_version
        self.core.patch_node(node.name, changes, _content_type=_MERGE_PATCH)

    def taint(self, node: NodeView, now: datetime) -> None:
        """Add the out-of-service taint (unless already there) and record what we did."""
        added = not node.has_out_of_service_taint()
        record = Record(Action.TAINT, now, taint_added=added)
        changes: dict[str, Any] = {"metadata": {"annotations": {TAKEOVER_ANNOTATION:
                                                                record.to_json()}}}
        if added:
            changes["spec"] = {"taints": _taint_body((*node.taints, OUT_OF_SERVICE))}
        self._patch_node(node, changes)

    def unfence(self, node: NodeView) -> None:
        self._patch_node(node, {"metadata": {"annotations": {FENCED_ANNOTATION: None}}})

    def untaint(self, node: NodeView) -> None:
        """Remove only the taint our record says we added, and the record and manual fence."""
        record = node.record()
        changes: dict[str, Any] = {"metadata": {"annotations": {TAKEOVER_ANNOTATION: None,
                                                                FENCED_ANNOTATION: None}}}
        if record is not None and record.taint_added and node.has_out_of_service_taint():
            kept = [t for t in node.taints if not t.same(OUT_OF_SERVICE)]
            changes["spec"] = {"taints": _taint_body(kept) or None}
        self._patch_node(node, changes)

    def record(self, node: NodeView, action: Action, now: datetime) -> None:
        note = Record(action, now, taint_added=False).to_json()
        self._patch_node(node, {"metadata": {"annotations": {TAKEOVER_ANNOTATION: note}}})

    def delete_pod(self, pod: PodView) -> None:
        """Force-delete this very pod (its uid as the precondition: a replacement of the same
        name makes it fail with 409, never die). Gone already is done."""
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": pod.uid}}
        try:
            self.core.delete_namespaced_pod(pod.name, pod.namespace, grace_period_seconds=0,
                                            body=_as_sent(options))
        except ApiException as exc:
            if exc.status != 404:
                raise

    def delete_attachment(self, attachment: VolumeAttachmentView) -> None:
        """Delete this very VolumeAttachment (its uid as the precondition)."""
        options = {"preconditions": {"uid": attachment.uid}}
        try:
            self.storage.delete_volume_attachment(attachment.name, body=_as_sent(options))
        except ApiException as exc:
            if exc.status != 404:
                raise

    def delete_node(self, node: NodeView) -> None:
        """Delete the Node as observed: uid and resourceVersion as preconditions, so a Node
        that re-registered or changed since is left alone."""
        options = {"preconditions": {"uid": node.uid, "resourceVersion": node.resource_version}}
        self.core.delete_node(node.name, body=_as_sent(options))

    def fence(self, node: str, by: str, now: datetime) -> ManualFence:
        """A person's confirmation that the machine is off, for the outage the Node shows now
        (its Ready=Unknown transition): it proves nothing for a later one."""
        api_node: Any = self.core.read_node(node)
        view = _node_view(api_node, None)
        if view.ready != "Unknown" or view.ready_since is None:
            raise NotDown(
                f"node {node} reports Ready={view.ready}: its kubelet is alive, so there is no "
                "outage to confirm (a fence is for a machine that has gone silent)")
        fence = ManualFence(view.ready_since, by, now)
        self._patch_node(view, {"metadata": {"annotations": {FENCED_ANNOTATION:
                                                             fence.to_json()}}})
        return fence

    def event(self, decision: Decision, node_uid: str, now: datetime) -> None:
        """A Kubernetes Event on the node (shown by `kubectl describe node`)."""
        warning = decision.action in (Action.SKIP, Action.DELETE_NODE)
        reason = {
            Action.TAINT: "TakeoverTainted",
            Action.DELETE_PODS: "TakeoverDeletedPods",
            Action.DELETE_NODE: "TakeoverDeletedNode",
            Action.UNTAINT: "TakeoverReleased",
            Action.UNFENCE: "TakeoverFenceCleared",
            Action.SKIP: "TakeoverSkipped",
        }[decision.action]
        stamp = _time(now)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{decision.node}.{secrets.token_hex(8)}",
                         "namespace": NODE_EVENT_NAMESPACE},
            "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": decision.node,
                               "uid": node_uid},
            "reason": reason,
            "message": decision.sentence(),
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self.identity,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        self.core.create_namespaced_event(NODE_EVENT_NAMESPACE, _as_sent(body))
