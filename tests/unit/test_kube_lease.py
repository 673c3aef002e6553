"""The primary lease as a Kubernetes Lease object and back (core/kube_lease.py): MicroTime, the
fields client-go fills, the self-fence annotation, the Lease the base ships (free), what a
replace keeps of the object read, and the bodies that are not a lease."""

from __future__ import annotations

from typing import Any

import pytest

from mysqlsts.core.kube_lease import (
    SELF_FENCE_ANNOTATION,
    decimal,
    lease_version,
    lease_with_record,
    micro_time,
    parse_micro_time,
    record_from_lease,
)
from mysqlsts.core.lease import LeaseRecord

WALL = 1_772_366_400.25  # 2026-03-01T12:00:00.250000Z
HOLDER = "mysql-0/8d0f6a0e-1c2b-4e5f-9a7b-3c4d5e6f7a8b"


def lease(spec: dict[str, Any] | None = None, annotations: dict[str, str] | None = None,
          version: str = "4711") -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "mysql-primary", "namespace": "db", "uid": "u-1",
                                "resourceVersion": version,
                                "labels": {"app.kubernetes.io/part-of": "mysqlsts"}}
    if annotations is not None:
        metadata["annotations"] = annotations
    doc: dict[str, Any] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                           "metadata": metadata}
    if spec is not None:
        doc["spec"] = spec
    return doc


def held(**spec: Any) -> dict[str, Any]:
    base = {"holderIdentity": HOLDER, "leaseDurationSeconds": 15,
            "renewTime": "2026-03-01T12:00:00.250000Z", "leaseTransitions": 3}
    return lease({**base, **spec}, {SELF_FENCE_ANNOTATION: "13.5"})


def test_micro_time_is_rfc3339_with_microseconds_in_utc() -> None:
    assert micro_time(WALL) == "2026-03-01T12:00:00.250000Z"
    assert micro_time(0.0) == "1970-01-01T00:00:00.000000Z"
    assert parse_micro_time(micro_time(WALL)) == WALL


@pytest.mark.parametrize("text,unix", [
    ("2026-03-01T12:00:00Z", 1_772_366_400.0),  # a Time: no fraction
    ("2026-03-01T13:00:00.250000+01:00", WALL),  # another zone
    ("2026-03-01T12:00:00.250000123Z", WALL),  # nanoseconds
])
def test_other_rfc3339_stamps_parse(text: str, unix: float) -> None:
    assert parse_micro_time(text) == pytest.approx(unix)


@pytest.mark.parametrize("text", ["2026-03-01", "2026-03-01T12:00:00", "2026-03-01 12:00:00Z",
                                  "yesterday", "", 1772366400])
def test_stamps_that_are_not_rfc3339_are_refused(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_micro_time(text)


def test_a_held_lease_reads_as_its_record() -> None:
    assert record_from_lease(held()) == LeaseRecord(HOLDER, WALL, 15.0, 3, 13.5)
    assert lease_version(held()) == "4711"


@pytest.mark.parametrize("doc", [
    lease(),  # as the kustomize base ships it: no spec at all
    lease({}),  # an empty spec
    lease({"holderIdentity": ""}),
    lease({"holderIdentity": None, "leaseDurationSeconds": 15}),
])
def test_the_shipped_lease_is_free(doc: dict[str, Any]) -> None:
    assert record_from_lease(doc) is None


def test_a_released_lease_is_free_and_keeps_its_transitions() -> None:
    released = lease({"holderIdentity": "", "leaseDurationSeconds": 1,
                      "renewTime": "2026-03-01T12:00:00.250000Z", "leaseTransitions": 7})
    assert record_from_lease(released) == LeaseRecord("", WALL, 1.0, 7, 0.0)


def test_missing_optional_fields_read_as_zero() -> None:
    doc = lease({"holderIdentity": HOLDER, "leaseDurationSeconds": 15})
    assert record_from_lease(doc) == LeaseRecord(HOLDER, 0.0, 15.0, 0, 0.0)  # no annotation: 0


@pytest.mark.parametrize("doc,says", [
    (lease({"holderIdentity": HOLDER}), "no spec.leaseDurationSeconds"),
    (held(leaseDurationSeconds=0), "leaseDurationSeconds"),
    (held(leaseDurationSeconds="15"), "leaseDurationSeconds"),
    (held(leaseDurationSeconds=True), "leaseDurationSeconds"),
    (held(leaseTransitions=-1), "leaseTransitions"),
    (held(renewTime="2026-03-01"), "RFC 3339"),
    (held(holderIdentity=7), "holderIdentity"),
    (lease({"holderIdentity": HOLDER, "leaseDurationSeconds": 15},
           {SELF_FENCE_ANNOTATION: "1e3"}), SELF_FENCE_ANNOTATION),
    (lease({"holderIdentity": HOLDER, "leaseDurationSeconds": 15},
           {SELF_FENCE_ANNOTATION: "-2"}), SELF_FENCE_ANNOTATION),
    ({**held(), "kind": "ConfigMap"}, "not a Lease"),
    ({**held(), "spec": ["x"]}, "spec is not an object"),
])
def test_a_malformed_lease_is_refused(doc: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        record_from_lease(doc)


def test_no_resource_version_is_refused() -> None:
    doc = held()
    del doc["metadata"]["resourceVersion"]
    with pytest.raises(ValueError, match="resourceVersion"):
        lease_version(doc)


@pytest.mark.parametrize("seconds,text", [(10.0, "10"), (13.5, "13.5"), (0.0, "0"),
                                          (1e7, "10000000"), (0.1, "0.1")])
def test_the_self_fence_annotation_is_a_plain_decimal(seconds: float, text: str) -> None:
    assert decimal(seconds) == text


def test_acquiring_writes_the_record_and_keeps_the_objects_metadata() -> None:
    shipped = lease(annotations={"note": "kept"})
    record = LeaseRecord(HOLDER, WALL, 15.0, 0, 12.0)
    body = lease_with_record(shipped, record)
    assert body["spec"] == {"holderIdentity": HOLDER, "leaseDurationSeconds": 15,
                            "renewTime": "2026-03-01T12:00:00.250000Z",
                            "acquireTime": "2026-03-01T12:00:00.250000Z",
                            "leaseTransitions": 0}
    # the compare-and-swap: the version read travels; labels, uid, other annotations stay
    assert body["metadata"]["resourceVersion"] == "4711"
    assert body["metadata"]["uid"] == "u-1"
    assert body["metadata"]["labels"] == {"app.kubernetes.io/part-of": "mysqlsts"}
    assert body["metadata"]["annotations"] == {"note": "kept", SELF_FENCE_ANNOTATION: "12"}
    assert shipped["metadata"].get("annotations") == {"note": "kept"}  # the input is untouched
    assert "spec" not in shipped
    assert record_from_lease(body) == record  # and it reads back as written


def test_a_holder_without_a_bound_removes_the_annotation() -> None:
    """No watchdog, no self-fence bound: a stale bound an earlier holder wrote must not stay
    for the controller to trust."""
    earlier = lease(annotations={"note": "kept", SELF_FENCE_ANNOTATION: "23.5"})
    body = lease_with_record(earlier, LeaseRecord(HOLDER, WALL, 15.0, 0, 0.0))
    assert body["metadata"]["annotations"] == {"note": "kept"}


def test_renewing_keeps_the_acquire_time_and_a_new_holder_gets_its_own() -> None:
    acquired = {**held()["spec"], "acquireTime": "2026-03-01T11:00:00.000000Z"}
    current = lease(acquired, {SELF_FENCE_ANNOTATION: "13.5"})
    renewed = lease_with_record(current, LeaseRecord(HOLDER, WALL + 2, 15.0, 3, 13.5))
    assert renewed["spec"]["acquireTime"] == "2026-03-01T11:00:00.000000Z"
    assert renewed["spec"]["renewTime"] == "2026-03-01T12:00:02.250000Z"
    taken = lease_with_record(current, LeaseRecord("mysql-0/other", WALL + 2, 15.0, 4, 13.5))
    assert taken["spec"]["acquireTime"] == "2026-03-01T12:00:02.250000Z"
    released = lease_with_record(current, LeaseRecord("", WALL + 2, 15.0, 3, 13.5))
    assert released["spec"]["holderIdentity"] == "" and "acquireTime" not in released["spec"]
    assert record_from_lease(released) == LeaseRecord("", WALL + 2, 15.0, 3, 13.5)


def test_a_duration_that_is_not_whole_seconds_is_rounded_up() -> None:
    body = lease_with_record(lease(), LeaseRecord(HOLDER, WALL, 2.5, 0, 2.0))
    assert body["spec"]["leaseDurationSeconds"] == 3  # a contender waits longer, never less
