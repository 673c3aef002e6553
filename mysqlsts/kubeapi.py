"""Reaching the Kubernetes API, for the two commands that talk to it (`status`, `takeover`).

One way to find the cluster (a kubeconfig as kubectl finds it, or the pod's service account),
one deadline on every request, and one sentence for a failed call. No pod process loads this
module (`.importlinter` holds the sidecar, the clone and the local set to it).
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from mysqlsts.errors import ConfigError

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# What a call to an API server that refuses, errs or does not answer raises.
API_FAILURES: tuple[type[Exception], ...] = (ApiException, urllib3.exceptions.HTTPError)


class _ApiClientWithDeadline(client.ApiClient):
    """Every request without its own timeout gets this one: an API server that accepts the
    connection and never answers would otherwise hold the caller (the takeover's loop, and
    with it the renewal of its Lease) forever."""

    def __init__(self, configuration: client.Configuration, request_timeout: float) -> None:
        super().__init__(configuration)
        self.request_timeout = request_timeout

    def call_api(self, method: Any, url: Any, header_params: Any = None, body: Any = None,
                 post_params: Any = None, _request_timeout: Any = None) -> Any:
        deadline = self.request_timeout if _request_timeout is None else _request_timeout
        return super().call_api(method, url, header_params, body, post_params,
                                _request_timeout=deadline)


@dataclass(frozen=True)
class Connection:
    api: Any  # kubernetes.client.ApiClient
    namespace: str  # the kubeconfig context's namespace, or the pod's own


def connect(
    *, kubeconfig: Path | None = None, context: str | None = None, in_cluster_first: bool = False,
    request_timeout: float = 10.0,
) -> Connection:
    """A client as kubectl finds its cluster: the kubeconfig (`kubeconfig`, else $KUBECONFIG,
    else ~/.kube/config), else the pod's service account. A controller running in a pod asks
    for the service account first (`in_cluster_first`), so a kubeconfig left in its image
    cannot point it elsewhere. Naming a kubeconfig or a context means exactly that one."""
    configuration = client.Configuration()
    explicit = kubeconfig is not None or context is not None
    if in_cluster_first and not explicit:
        with contextlib.suppress(ConfigException):
            return _in_cluster(configuration, request_timeout)
    # The loaders have no type annotations; their results are plain dicts.
    load_kube: Any = config.load_kube_config
    list_contexts: Any = config.list_kube_config_contexts
    config_file = None if kubeconfig is None else str(kubeconfig)
    try:
        load_kube(config_file=config_file, context=context, client_configuration=configuration)
        contexts, active = list_contexts(config_file=config_file)
    except (ConfigException, OSError) as exc:
        if explicit:
            raise ConfigError(f"cannot load kubeconfig: {exc}") from exc
        if in_cluster_first:
            raise ConfigError(f"no cluster to talk to: not in a pod and no kubeconfig ({exc})"
                              ) from exc
        try:
            return _in_cluster(configuration, request_timeout)
        except ConfigException as inner:
            raise ConfigError(f"no cluster to talk to: not in a pod and no kubeconfig ({exc})"
                              ) from inner
    chosen = next((c for c in contexts if c["name"] == context), active)
    namespace = str((chosen or {}).get("context", {}).get("namespace") or "default")
    return Connection(_client(configuration, request_timeout), namespace)


def _in_cluster(configuration: client.Configuration, request_timeout: float) -> Connection:
    load_incluster: Any = config.load_incluster_config
    load_incluster(client_configuration=configuration)
    return Connection(_client(configuration, request_timeout),
                      IN_CLUSTER_NAMESPACE.read_text().strip())


def _client(configuration: client.Configuration, request_timeout: float) -> Any:
    # One attempt per request: the callers try again on their own cadence, and urllib3's
    # retries would only add warnings and multiply the deadline.
    configuration.retries = 0
    return _ApiClientWithDeadline(configuration, request_timeout)


def describe_failure(exc: Exception) -> str:
    """One line for a failed call: the HTTP status and the API's own message, or the
    connection's last error; never the headers, the request or urllib3's retry bookkeeping."""
    if isinstance(exc, ApiException):
        body = exc.body or b""
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        with contextlib.suppress(ValueError, AttributeError):  # a Status object's message
            text = str(json.loads(text).get("message", text))
        first = text.strip().splitlines()[0] if text.strip() else ""
        return f"HTTP {exc.status} {exc.reason or ''}{': ' + first if first else ''}".strip()
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    return " ".join(str(exc).split()) or type(exc).__name__
