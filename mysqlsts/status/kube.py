"""The thin adapter over the official `kubernetes` client that `mysqlsts status` needs: list
the set's pods and read one sidecar's /status through the API server's pod proxy
(GET /api/v1/namespaces/NS/pods/NAME:PORT/proxy/status). Everything else sees plain values."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from mysqlsts.errors import MysqlstsError
from mysqlsts.kubeapi import API_FAILURES, describe_failure
from mysqlsts.status.table import Fetched, PodFacts


class StatusApi:
    """The calls `mysqlsts status` makes; each carries the connection's request deadline
    (`kubeapi.connect`)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)

    def pods(self, namespace: str, selector: str) -> list[PodFacts]:
        try:
            listed = self.core.list_namespaced_pod(namespace, label_selector=selector)
        except API_FAILURES as exc:
            raise MysqlstsError(f"cannot list pods in {namespace}: {describe_failure(exc)}"
                                ) from exc
        return [_facts(pod) for pod in listed.items]

    def sidecar_status(self, namespace: str, pod: str, port: int) -> Fetched:
        try:
            # Raw bytes: the generated method would otherwise return the body as a str.
            response: Any = self.core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod}:{port}", namespace, "status", _preload_content=False,
            )
            document = json.loads(response.data)
        except API_FAILURES as exc:
            return Fetched(None, f"proxy to {pod}:{port}/status failed: {describe_failure(exc)}")
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
