"""The primary lease as a Kubernetes Lease object (coordination.k8s.io/v1), and back (pure).

The Lease's fields carry a LeaseRecord (core/lease.py) the way client-go's leader election fills
them, so `kubectl get lease mysql-primary -o yaml` reads as people expect:

- spec.holderIdentity: the holder (`<pod name>/<pod uid>`); "" or absent: free;
- spec.leaseDurationSeconds: the duration, rounded up to whole seconds (the field is an integer;
  rounding up only makes a contender wait longer);
- spec.renewTime: the holder's wall clock at its renew, a MicroTime (RFC 3339, microseconds, Z):
  for people only, never compared with another machine's clock;
- spec.acquireTime: when the current holder took it (kept while the holder renews);
- spec.leaseTransitions: how often the holder changed;
- metadata.annotations["mysqlsts.io/self-fence-seconds"]: the holder's self-fence time
  (LeaseRecord.self_fence), a decimal string; absent reads as 0 (unknown).

The version for compare-and-swap is metadata.resourceVersion: the adapter
(adapters/kube_lease_store.py) PUTs the object it read, changed by `lease_with_record`, and
kube-apiserver refuses it with 409 when someone wrote in between.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from mysqlsts.core.lease import LeaseRecord

SELF_FENCE_ANNOTATION = "mysqlsts.io/self-fence-seconds"
API_VERSION = "coordination.k8s.io/v1"
KIND = "Lease"

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_DECIMAL = re.compile(r"\d+(\.\d+)?")


def micro_time(unix: float) -> str:
    """A MicroTime as kube-apiserver writes and parses it: `2026-03-01T12:00:00.000000Z`."""
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_micro_time(text: str) -> float:
    """Unix time of an RFC 3339 stamp (MicroTime, or a Time without fraction). ValueError on
    anything else (a date alone, no zone)."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    return datetime.fromisoformat(text).timestamp()


def decimal(seconds: float) -> str:
    """Seconds as the annotation's decimal string: `10`, `13.5`, never an exponent."""
    return format(seconds, ".6f").rstrip("0").rstrip(".")


def parse_decimal(text: Any) -> float:
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise ValueError(f"{SELF_FENCE_ANNOTATION} is not a decimal number of seconds: {text!r}")
    return float(text)


def lease_version(lease: Mapping[str, Any]) -> str:
    """metadata.resourceVersion; ValueError when the object has none."""
    version = _mapping(lease.get("metadata"), "metadata").get("resourceVersion")
    if not isinstance(version, str) or not version:
        raise ValueError("the Lease has no metadata.resourceVersion")
    return version


def record_from_lease(lease: Mapping[str, Any]) -> LeaseRecord | None:
    """The record a Lease object holds. None: the Lease as shipped (no holder, never written);
    a Lease someone released (holder "" with its other fields) is a record with holder "", so
    its transitions carry on. ValueError when the object is not a Lease, or a field the
    decisions read is malformed (a held Lease without its duration, a bad time or annotation).
    """
    if lease.get("kind", KIND) != KIND:
        raise ValueError(f"not a Lease but a {lease.get('kind')!r}")
    metadata = _mapping(lease.get("metadata"), "metadata")
    spec = _mapping(lease.get("spec"), "spec")
    holder = spec.get("holderIdentity") or ""
    if not isinstance(holder, str):
        raise ValueError(f"spec.holderIdentity is not a string: {holder!r}")
    renew = spec.get("renewTime")
    transitions = spec.get("leaseTransitions")
    duration = spec.get("leaseDurationSeconds")
    if not holder and renew is None and transitions is None:
        return None
    if duration is None and holder:
        raise ValueError(f"the Lease is held by {holder} but has no spec.leaseDurationSeconds")
    if duration is not None and (not _is_int(duration) or duration < 1):
        raise ValueError(f"spec.leaseDurationSeconds is not a positive integer: {duration!r}")
    if transitions is not None and (not _is_int(transitions) or transitions < 0):
        raise ValueError(f"spec.leaseTransitions is not a count: {transitions!r}")
    annotations = _mapping(metadata.get("annotations"), "metadata.annotations")
    fence = annotations.get(SELF_FENCE_ANNOTATION)
    return LeaseRecord(
        holder=holder,
        renewed_at=0.0 if renew is None else parse_micro_time(renew),
        duration=float(duration or 0),
        transitions=int(transitions or 0),
        self_fence=0.0 if fence is None else parse_decimal(fence),
    )


def lease_with_record(lease: Mapping[str, Any], record: LeaseRecord) -> dict[str, Any]:
    """The Lease object to PUT: `lease` as read (its metadata, labels, other annotations and
    resourceVersion kept, so the write is a compare-and-swap on it) with `record` in its spec
    and the self-fence annotation."""
    body = copy.deepcopy(dict(lease))
    body["apiVersion"], body["kind"] = API_VERSION, KIND
    metadata = body.setdefault("metadata", {})
    metadata.pop("managedFields", None)  # the server's bookkeeping, not ours to send back
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items()
                   if k != SELF_FENCE_ANNOTATION}
    if record.self_fence > 0:
        annotations[SELF_FENCE_ANNOTATION] = decimal(record.self_fence)
    # else: the holder claims no bound (no watchdog): no annotation, so the controller waits
    # for a power fence rather than for a stale bound an earlier holder wrote.
    metadata["annotations"] = annotations
    old = body.get("spec") or {}
    renewed = micro_time(record.renewed_at)
    spec: dict[str, Any] = {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": max(1, math.ceil(record.duration)),
        "renewTime": renewed,
        "leaseTransitions": record.transitions,
    }
    if record.holder:
        same = old.get("holderIdentity") == record.holder and old.get("acquireTime")
        spec["acquireTime"] = old["acquireTime"] if same else renewed
    body["spec"] = spec
    body.pop("status", None)
    return body


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{where} is not an object: {value!r}")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
