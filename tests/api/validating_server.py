"""kmock's Kubernetes emulator with the checks kube-apiserver makes that the controller's
safety depends on, which kmock itself skips:

- optimistic concurrency: a write carrying a stale metadata.resourceVersion is refused with 409,
  and every write bumps the object's resourceVersion (kmock keeps it unchanged);
- delete preconditions: `preconditions.uid` / `preconditions.resourceVersion` that do not match
  the stored object are refused with 409;
- label selectors on lists (kmock ignores them and lists everything);
- legacy Events: `involvedObject.namespace` must equal the Event's namespace, and an Event about
  a cluster-scoped object (a Node) is accepted only in `default` (422 otherwise), as
  `ValidateEventCreate` does;
- a body whose metadata.namespace differs from the request's is refused with 400;
- PUT (replace) of a named object, which kmock does not serve at all: the object must exist
  (404: a Lease is never created by an update), the body's metadata.name must be the URL's
  and its namespace the request's (400), a stale metadata.resourceVersion or another
  metadata.uid is refused with 409, a Lease's spec is validated (MicroTime with exactly six
  fractional digits, else 400, as its JSON decoding does; a duration > 0 and transitions >= 0,
  else 422); the stored object is the body as sent, with the server's uid, creationTimestamp
  and a new resourceVersion;
- the API server's clock: the Date header of every response can be pinned (`api_time`), so a
  test decides what "now" is on the control plane;
- managedFields: every create and update stamps the writer's entry (by its field manager, as
  kube-apiserver names it from `fieldManager` or the User-Agent) with the server's time, as
  kube-apiserver does (the takeover's `--once` reads a Lease's last write from it);
- injected failures: `fail[("PATCH", "/api/v1/nodes/node-b")] = 500` answers that request with
  that status, as an overloaded or broken API server would.
"""

from __future__ import annotations

import copy
import itertools
import re
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import enums, rendering

_versions = itertools.count(100000)
# metav1.MicroTime's JSON form: time.Parse(RFC3339Micro) wants exactly six fractional digits.
_MICRO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})")


def _invalid(kind: str, name: str, message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=422, reason="Invalid",
                                 message=f'{kind} "{name}" is invalid: {message}')


def _conflict(message: str) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=409, reason="Conflict", message=message)


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors (`k=v`, `k==v`, `k!=v`, `k`, `!k`), comma-joined."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key.strip()) != value.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif " in " in term or " notin " in term:
            raise kmock.KubernetesError(status=400, reason="BadRequest",
                                        message=f"set-based selector not emulated: {term}")
        elif term not in labels:
            return False
    return True


@attrs.define(kw_only=True)
class ValidatingApiServer(kmock.KubernetesEmulator):
    api_time: datetime | None = None  # the Date header; None: the real time
    fail: dict[tuple[str, str], int] = attrs.field(factory=dict)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fallback["put"] << self._serve_replace

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        method = str(getattr(request.method, "value", request.method)).upper()
        status = self.fail.get((method, request.url.path))
        if status is not None:
            raise kmock.KubernetesError(status=status, reason="InternalError",
                                        message=f"injected failure {status}")
        if request.resource is not None:
            self._validate(request)
        response = await super()._handle(request)
        if self.api_time is not None and not response.prepared:
            response.headers["Date"] = format_datetime(self.api_time.astimezone(UTC),
                                                       usegmt=True)
        return response

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        listed: Any = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector and isinstance(listed, dict):
            listed["items"] = [i for i in listed["items"] if selector_matches(
                selector, (i.get("metadata") or {}).get("labels") or {})]
        return listed

    def _stored(self, request: rendering.Request) -> Any:
        key = (request.resource, request.namespace, request.name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key]

    def _validate(self, request: rendering.Request) -> None:
        data = request.data if isinstance(request.data, dict) else {}
        meta = data.setdefault("metadata", {}) if request.action in (
            enums.action.CREATE, enums.action.UPDATE) else data.get("metadata") or {}
        if request.action == enums.action.CREATE:
            sent_ns = meta.get("namespace")
            if sent_ns and request.namespace and sent_ns != request.namespace:
                raise kmock.KubernetesError(
                    status=400, reason="BadRequest",
                    message="the namespace of the provided object does not match the namespace "
                            "sent on the request")
            assert request.resource is not None
            if request.resource.plural == "events":
                self._validate_event(data, request.namespace or sent_ns or "")
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp",
                            datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
            meta["resourceVersion"] = str(next(_versions))
            meta["managedFields"] = self._managed_fields(request, [])
        elif request.action == enums.action.UPDATE and request.name is not None:
            stored = self._stored(request)
            sent = meta.get("resourceVersion")
            if stored is not None and sent and sent != stored["metadata"].get("resourceVersion"):
                raise _conflict(f'Operation cannot be fulfilled on {request.resource.plural} '
                                f'"{request.name}": the object has been modified; please apply '
                                "your changes to the latest version and try again")
            meta["resourceVersion"] = str(next(_versions))
            kept = stored["metadata"].get("managedFields") or [] if stored is not None else []
            meta["managedFields"] = self._managed_fields(request, kept)
        elif request.action == enums.action.DELETE and request.name is not None:
            stored = self._stored(request)
            wanted = data.get("preconditions") or {}
            if stored is None or not wanted:
                return
            have = stored["metadata"]
            for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
                if wanted.get(field) and wanted[field] != have.get(field):
                    raise _conflict(f"Precondition failed: {label} in precondition: "
                                    f"{wanted[field]}, {label} in object meta: {have.get(field)}")

    def _managed_fields(self, request: rendering.Request, kept: list[Any]) -> list[Any]:
        """The object's managedFields after this write: kube-apiserver keeps one entry per
        manager and operation and stamps the writer's with the time of the write (whole
        seconds, its own clock). The field sets themselves are not tracked here."""
        agent = next((v for k, v in request.headers.items() if k.lower() == "user-agent"), "")
        manager = request.params.get("fieldManager") or agent.split("/")[0] or "unknown"
        now = self.api_time or datetime.now(UTC)
        assert request.resource is not None
        group, version = request.resource.group or "", request.resource.version or ""
        entry = {"manager": manager, "operation": "Update",
                 "apiVersion": f"{group}/{version}" if group else version,
                 "time": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "fieldsType": "FieldsV1", "fieldsV1": {}}
        others = [e for e in kept if (e.get("manager"), e.get("operation")) != (manager, "Update")]
        return [*others, entry]

    async def _serve_replace(self, request: rendering.Request) -> rendering.Payload:
        """PUT of a named object, as kube-apiserver's update handler answers it."""
        if request.resource is None or request.name is None:
            raise kmock.KubernetesError(status=405, reason="MethodNotAllowed",
                                        message="PUT needs a named object")
        data = request.data
        if not isinstance(data, dict):
            raise kmock.KubernetesError(status=400, reason="BadRequest",
                                        message="the body is not an object")
        meta = data.get("metadata") or {}
        if meta.get("name") != request.name:
            raise kmock.KubernetesError(
                status=400, reason="BadRequest",
                message=f"the name of the object ({meta.get('name')}) does not match the name on "
                        f"the URL ({request.name})")
        if meta.get("namespace") and meta["namespace"] != request.namespace:
            raise kmock.KubernetesError(
                status=400, reason="BadRequest",
                message="the namespace of the provided object does not match the namespace sent "
                        "on the request")
        plural = request.resource.plural
        async with self._lock:
            stored = self._stored(request)
            if stored is None:
                # Lease, like most kinds, has AllowCreateOnUpdate false: no create by PUT.
                raise kmock.KubernetesError(status=404, reason="NotFound",
                                            message=f'{plural} "{request.name}" not found')
            have = stored["metadata"]
            if meta.get("uid") and meta["uid"] != have.get("uid"):
                raise _conflict(f"Precondition failed: UID in precondition: {meta['uid']}, UID "
                                f"in object meta: {have.get('uid')}")
            sent = meta.get("resourceVersion")
            if sent and sent != have.get("resourceVersion"):
                raise _conflict(f'Operation cannot be fulfilled on {plural} "{request.name}": '
                                "the object has been modified; please apply your changes to "
                                "the latest version and try again")
            if plural == "leases":
                self._validate_lease(data, request.name)
            replaced = copy.deepcopy(data)
            new_meta = replaced.setdefault("metadata", {})
            if request.namespace:
                new_meta["namespace"] = request.namespace
            for kept in ("uid", "creationTimestamp"):
                if have.get(kept):
                    new_meta[kept] = have[kept]
            new_meta["resourceVersion"] = str(next(_versions))
            new_meta["managedFields"] = self._managed_fields(request,
                                                             have.get("managedFields") or [])
            stored.create(replaced)
            return replaced

    @staticmethod
    def _validate_lease(lease: dict[str, Any], name: str) -> None:
        if lease.get("kind", "Lease") != "Lease":
            raise kmock.KubernetesError(status=400, reason="BadRequest",
                                        message=f"the object is a {lease.get('kind')}, not a Lease")
        spec = lease.get("spec") or {}
        for field in ("renewTime", "acquireTime"):
            value = spec.get(field)
            if value is not None and not (isinstance(value, str) and _MICRO_TIME.fullmatch(value)):
                raise kmock.KubernetesError(
                    status=400, reason="BadRequest",
                    message=f'parsing time "{value}" as "2006-01-02T15:04:05.000000Z07:00": '
                            f"spec.{field} is not a MicroTime")
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            raise _invalid("Lease", name, "spec.leaseDurationSeconds: Invalid value: "
                           f"{duration}: must be greater than 0")
        transitions = spec.get("leaseTransitions")
        if transitions is not None and (not isinstance(transitions, int) or transitions < 0):
            raise _invalid("Lease", name, "spec.leaseTransitions: Invalid value: "
                           f"{transitions}: must be greater than or equal to 0")

    @staticmethod
    def _validate_event(event: dict[str, Any], namespace: str) -> None:
        name = (event.get("metadata") or {}).get("name", "")
        involved = event.get("involvedObject") or {}
        involved_ns = involved.get("namespace") or ""
        if involved_ns and involved_ns != namespace:
            raise _invalid("Event", name, f'involvedObject.namespace: Invalid value: '
                           f'"{involved_ns}": does not match event.namespace')
        if not involved_ns and namespace not in ("", "default"):
            raise _invalid("Event", name, f'involvedObject.namespace: Invalid value: "": does '
                           f'not match event.namespace ({namespace}): an Event about a '
                           "cluster-scoped object belongs in default")
