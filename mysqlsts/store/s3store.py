"""An S3-compatible service as an object store (`s3://bucket/prefix`), through obstore.

obstore (the Rust object_store crate) was chosen over boto3 by docs/backup.md's measurement.
Create-only puts send `If-None-Match: *` (a retry that meets an object holding exactly its
bytes, written by its own first attempt whose answer was lost, is a success); each request
carries an `x-amz-checksum-sha256` the service may check, but integrity never rests on it:
the layout records every part's SHA-256 and readers check it themselves. One retry policy
(`RETRIES`, the backoff below, `retry_seconds` from the first attempt): obstore applies it to
5xx answers and cut-off downloads (resumed); `put_new` applies it to a create-only put cut off
in transit (reset, broken pipe, timed out), which obstore does not retry
(tests/integration/test_backup_faults.py). A stalled request ends after `timeout_seconds`.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store as _Client

from mysqlsts.adapters.fs import read_secret
from mysqlsts.core.backoff import backoff
from mysqlsts.core.store_url import StoreURL
from mysqlsts.store.base import (
    CHUNK,
    ObjectExists,
    ObjectInfo,
    ObjectMissing,
    StoreError,
    check_name,
)
from mysqlsts.store.settings import S3Settings

if TYPE_CHECKING:
    from obstore.store import S3Config

# obstore raises its own exceptions, and the built-in ones for some (FileNotFoundError for a
# missing object, FileExistsError, timeouts and connection errors as OSError).
_FAILED = (BaseError, OSError)
_MISSING = (NotFoundError, FileNotFoundError)
_EXISTS = (AlreadyExistsError, PreconditionError, FileExistsError)

# The store's retry policy, obstore's and put_new's alike: at most RETRIES retries, waiting
# FIRST_BACKOFF seconds, doubling up to MAX_BACKOFF, none started past `retry_seconds`.
RETRIES = 10
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 15.0

# obstore's request failed in transit (its HttpError kinds Connect, Request, Timeout,
# Interrupted), not with an answer: a 4xx will not change, a 5xx obstore has retried itself.
_IN_TRANSIT = re.compile(
    r"inner: Http\(\s*HttpError \{\s*kind: (Connect|Request|Timeout|Interrupted)\b")

log = logging.getLogger(__name__)


class S3Store:
    def __init__(self, url: StoreURL, settings: S3Settings) -> None:
        self.url = url
        config: S3Config = {"checksum_algorithm": "sha256"}
        if settings.endpoint:
            config["endpoint"] = settings.endpoint
        if settings.region:
            config["region"] = settings.region
        config["virtual_hosted_style_request"] = not settings.path_style
        if (settings.access_key_file is None) != (settings.secret_key_file is None):
            raise StoreError("store: give both the access key file and the secret key file, "
                             "or neither (the standard credential chain)")
        if settings.access_key_file is not None and settings.secret_key_file is not None:
            config["access_key_id"] = read_secret(settings.access_key_file, "S3 access key id")
            config["secret_access_key"] = read_secret(settings.secret_key_file, "S3 secret key")
        try:
            self._client = _Client(
                url.bucket, prefix=url.prefix or None, config=config,
                client_options={
                    "allow_http": settings.endpoint.startswith("http://"),
                    "connect_timeout": timedelta(seconds=min(10.0, settings.timeout_seconds)),
                    "timeout": timedelta(seconds=settings.timeout_seconds),
                },
                retry_config={
                    "max_retries": RETRIES,
                    "retry_timeout": timedelta(seconds=settings.retry_seconds),
                    "backoff": {"init_backoff": timedelta(seconds=FIRST_BACKOFF),
                                "max_backoff": timedelta(seconds=MAX_BACKOFF), "base": 2}},
            )
        except _FAILED as error:
            raise StoreError(f"store {self.describe()}: {_reason(error)}") from error
        self._retry_seconds = settings.retry_seconds

    def describe(self) -> str:
        return str(self.url)

    def put_new(self, name: str, data: bytes) -> None:
        check_name(name)
        deadline = time.monotonic() + self._retry_seconds
        failures = 0
        while True:
            try:
                obstore.put(self._client, name, data, mode="create", use_multipart=False)
                return
            except _EXISTS:
                # A retry (obstore's after a 5xx, or ours after a cut) whose first attempt
                # landed with its answer lost meets that object: our write, done, when the
                # object holds exactly these bytes (read back: see _holds).
                if self._holds(name, data):
                    return
                raise ObjectExists(f"store {self.describe()}: {name} exists") from None
            except _FAILED as error:
                failures += 1
                pause = backoff(failures, FIRST_BACKOFF, MAX_BACKOFF)
                if (not in_transit(error) or failures > RETRIES
                        or time.monotonic() + pause > deadline):
                    raise self._error(f"cannot write {name}", error) from error
                log.warning("store %s: writing %s was cut off (%s); retry %d in %.1fs",
                            self.describe(), name, _reason(error), failures, pause)
                time.sleep(pause)

    def _holds(self, name: str, data: bytes) -> bool:
        """Whether the object holds exactly `data`, by reading it back: the only proof that
        does not trust the service (an ETag is no content hash under SSE-KMS, a checksum in
        metadata is what some writer claimed, and moto checks neither); it costs one GET,
        only after a 412. A store that cannot answer says so (its StoreError), rather than
        pass for a conflict."""
        try:
            return hashlib.sha256(b"".join(self.get(name))).digest() == hashlib.sha256(
                data).digest()
        except ObjectMissing:
            return False

    def get(self, name: str) -> Iterator[bytes]:
        try:
            result = obstore.get(self._client, check_name(name))
        except _MISSING:
            raise ObjectMissing(f"store {self.describe()}: no object {name}") from None
        except _FAILED as error:
            raise self._error(f"cannot read {name}", error) from error
        return self._stream(name, result.stream(min_chunk_size=CHUNK))

    def _stream(self, name: str, chunks: Iterator[Any]) -> Iterator[bytes]:
        try:
            for chunk in chunks:
                yield bytes(chunk)
        except _FAILED as error:
            raise self._error(f"reading {name} failed", error) from error

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        try:
            for batch in obstore.list(self._client, prefix or None, chunk_size=1000):
                for meta in batch:
                    yield ObjectInfo(meta["path"], meta["size"])
        except _FAILED as error:
            raise self._error("cannot list", error) from error

    def delete(self, name: str) -> None:
        try:
            obstore.delete(self._client, check_name(name))
        except _MISSING:
            return
        except _FAILED as error:
            raise self._error(f"cannot delete {name}", error) from error

    def _error(self, what: str, error: Exception) -> StoreError:
        return StoreError(f"store {self.describe()}: {what}: {_reason(error)}")


def in_transit(error: Exception) -> bool:
    """Whether a request failed in transit (reset, broken pipe, timed out, refused), not
    with the service's answer."""
    return isinstance(error, (ConnectionError, TimeoutError)) or bool(
        _IN_TRANSIT.search(str(error)))


def _reason(error: Exception) -> str:
    """obstore's multi-line error chain as a short phrase an operator can act on."""
    text = str(error)
    if isinstance(error, (PermissionDeniedError, UnauthenticatedError)) or any(
            code in text for code in ("InvalidAccessKeyId", "SignatureDoesNotMatch",
                                      "AccessDenied", "ExpiredToken")):
        return "access denied (check the credentials)"
    if "NoSuchBucket" in text:
        return "the bucket does not exist"
    if "Missing region" in text or "region" in text.lower() and "missing" in text.lower():
        return "no region configured"
    for marker in ("error sending request", "Connection refused", "timed out",
                   "operation timed out"):
        if marker in text:
            return f"the service did not answer ({marker})"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return " ".join(first.split())[:300] or type(error).__name__
