"""How to reach an S3-compatible service: plain values, built once from the options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class S3Settings:
    endpoint: str = ""  # empty: AWS, from the region
    region: str = ""  # empty: the standard chain's (AWS_REGION), else us-east-1
    path_style: bool = False  # bucket in the path (MinIO, Ceph RGW, moto), not the host name
    # Secret files holding the access key id and the secret key; both empty: the standard
    # chain (environment, web identity token as IRSA / workload identity mount, instance role).
    access_key_file: Path | None = None
    secret_key_file: Path | None = None
    timeout_seconds: float = 120.0  # one request, connect to last byte
    retry_seconds: float = 60.0  # retries (5xx, cut-off transfers) stop after this long
