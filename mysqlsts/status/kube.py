"""The thin adapter over the official `kubernetes` client that `mysqlsts status` needs: list
the set's pods and read one sidecar's /status through the API server's pod proxy
(GET /api/v1/namespaces/NS/pods/NAME:PORT/proxy/status). Everything else sees plain values."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from mysqlsts.errors import ConfigError, MysqlstsError
from mysqlsts.status.table import Fetched, PodFacts

IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def connect(kubeconfig: Path | None, context: str | None) -> tuple[client.ApiClient, str]:
    """An API client from the kubeconfig (as kubectl finds it) or, inside a pod, the service
    account; and the namespace the chosen context names (else `default`)."""
    configuration = client.Configuration()
    config_file = None if kubeconfig is None else str(kubeconfig)
    # The loaders have no type annotations; their results are plain dicts.
    load_kube: Any = config.load_kube_config
    list_contexts: Any = config.list_kube_config_contexts
    load_incluster: Any = config.load_incluster_config
    try:
        load_kube(config_file=config_file, context=context, client_configuration=configuration)
        contexts, active = list_contexts(config_file=config_file)
        chosen = next((c for c in contexts if c["name"] == context), active)
        namespace = str((chosen or {}).get("context", {}).get("namespace") or "default")
    except (ConfigException, OSError) as exc:
        if kubeconfig is not None or context is not None:
            raise ConfigError(f"cannot load kubeconfig: {exc}") from exc
        try:
            load_incluster(client_configuration=configuration)
        except ConfigException as inner:
            raise ConfigError(f"no kubeconfig and not in a cluster: {exc}") from inner
        namespace = IN_CLUSTER_NAMESPACE.read_text().strip()
    # One attempt per request: a watch refreshes anyway, and urllib3's retries would log warnings.
    configuration.retries = 0
    return client.ApiClient(configuration), namespace


def _reason(exc: Exception) -> str:
    if isinstance(exc, ApiException):
        body = exc.body or b""
        text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
        with contextlib.suppress(ValueError, AttributeError):  # a Status object's message
            text = str(json.loads(text).get("message", text))
        first = text.strip().splitlines()[0] if text.strip() else ""
        return f"HTTP {exc.status} {exc.reason or ''}{': ' + first if first else ''}".strip()
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason  # the cause, without urllib3's retry bookkeeping
    return " ".join(str(exc).split()) or type(exc).__name__


class KubeCluster:
    def __init__(self, api: client.ApiClient, timeout: float = 5.0) -> None:
        self.core = client.CoreV1Api(api)
        self.timeout = timeout

    def pods(self, namespace: str, selector: str) -> list[PodFacts]:
        try:
            listed = self.core.list_namespaced_pod(
                namespace, label_selector=selector, _request_timeout=self.timeout
            )
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            raise MysqlstsError(f"cannot list pods in {namespace}: {_reason(exc)}") from exc
        return [_facts(pod) for pod in listed.items]

    def sidecar_status(self, namespace: str, pod: str, port: int) -> Fetched:
        try:
            # Raw bytes: the generated method would otherwise return the body as a str.
            response: Any = self.core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod}:{port}", namespace, "status", _preload_content=False,
                _request_timeout=self.timeout,
            )
            document = json.loads(response.data)
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            return Fetched(None, f"proxy to {pod}:{port}/status failed: {_reason(exc)}")
        except ValueError as exc:
            return Fetched(None, f"{pod}:{port}/status is not JSON: {exc}")
        if not isinstance(document, dict):
            return Fetched(None, f"{pod}:{port}/status is not a JSON object")
        return Fetched(document)


def _facts(pod: Any) -> PodFacts:
    conditions = (pod.status.conditions or []) if pod.status else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    return PodFacts(
        name=pod.metadata.name,
        node=pod.spec.node_name if pod.spec else None,
        phase=(pod.status.phase if pod.status else None) or "Unknown",
        ready=ready,
    )
