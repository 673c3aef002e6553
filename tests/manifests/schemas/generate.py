"""Regenerate the vendored prometheus-operator JSON schemas in this directory.

No registry this project can reach ships the prometheus-operator CRD YAML, so the schemas come
from PyPI's `cloudcoil-models-prometheus-operator`, pydantic models generated from those CRDs'
OpenAPI schemas. Run it in a throwaway venv, not the project's:

    python3 -m venv /tmp/po
    /tmp/po/bin/pip install cloudcoil-models-prometheus-operator==0.80.1.0
    /tmp/po/bin/python tests/manifests/schemas/generate.py

Pydantic ignores unknown fields, but the API server rejects them (kubectl's default server-side
field validation is Strict), so every object schema that lists its properties is closed here
with `additionalProperties: false`: a misspelt field fails the test as it would fail an apply.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cloudcoil.models.prometheus_operator import v1  # type: ignore[import-not-found]

PACKAGE = "cloudcoil-models-prometheus-operator"
HERE = Path(__file__).resolve().parent


def closed(node: Any) -> Any:
    if isinstance(node, dict):
        node = {key: closed(value) for key, value in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^(?i)"):
            # Go accepts inline flags anywhere; Python only at the very start.
            node["pattern"] = "(?i)^" + pattern[len("^(?i)") :]
        return node
    if isinstance(node, list):
        return [closed(item) for item in node]
    return node


def main() -> None:
    for kind in ("PodMonitor", "PrometheusRule"):
        schema = closed(getattr(v1, kind).model_json_schema(by_alias=True))
        schema["$comment"] = (
            f"monitoring.coreos.com/v1 {kind} from {PACKAGE}=={version(PACKAGE)}, "
            "closed with additionalProperties: false by tests/manifests/schemas/generate.py"
        )
        out = HERE / f"{kind.lower()}.schema.json"
        out.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
