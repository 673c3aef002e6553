"""The sidecar's side of cloning: the record a clone left here, and the donor for the next pod."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mysqlsts.adapters.datadir import read_clone_record
from mysqlsts.core.clone_record import CloneRecord
from mysqlsts.core.clone_window import ChunkCounts
from mysqlsts.errors import CloneError
from mysqlsts.sidecar.settings import SidecarSettings

log = logging.getLogger(__name__)


def completed_clone(data_dir: Path) -> CloneRecord | None:
    """The completed clone's record, if this pod was cloned; a damaged record is reported and
    ignored (replication then starts from the server's own position, never a guessed one)."""
    try:
        return read_clone_record(data_dir)
    except CloneError as exc:
        log.warning("ignoring the clone record: %s", exc)
        return None


@dataclass
class DonorStats:
    """Totals for /status (the metrics hold the per-result counters)."""

    streams: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0,
                                                               "refused": 0})
    bytes_served: int = 0
    # Chunks sent compressed (DATA_ZSTD) or raw (DATA): whether compression pays here.
    chunks: dict[str, int] = field(default_factory=lambda: {"zstd": 0, "raw": 0})
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, result: str, count: int, chunks: ChunkCounts) -> None:
        with self.lock:
            self.streams[result] = self.streams.get(result, 0) + 1
            self.bytes_served += count
            self.chunks["zstd"] += chunks.compressed
            self.chunks["raw"] += chunks.raw

    def as_dict(self) -> dict[str, object]:
        with self.lock:
            return {"streams": dict(self.streams), "bytes_served": self.bytes_served,
                    "chunks": dict(self.chunks)}


class Donor:
    """The clone donor (mysqlsts.clone.donor) on its own thread: `settings.donor` and
    `settings.stream`, serving the pod's own server on `settings.clone_port`."""

    def __init__(self, settings: SidecarSettings, token: Callable[[], str],
                 on_stream_done: Callable[[str, int, float, ChunkCounts], None]):
        from mysqlsts.clone.donor import BackupSource, DonorServer

        assert settings.clone_port is not None, "no donor without a clone port"
        source = BackupSource(
            flavor=settings.flavor, host=settings.local.host, port=settings.local.port,
            data_dir=settings.data_dir, user=settings.accounts.backup_user,
            password_file=settings.secrets.backup_password,
        )
        self._server = DonorServer(
            settings.listen_address, settings.clone_port, token=token,
            backup_command_factory=source.command_factory(), on_stream_done=on_stream_done,
            max_rate=settings.donor.clone_max_rate,
            compression=settings.stream.clone_compression,
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="clone-donor",
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.address[1]

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._server.shutdown(timeout=timeout)
        self._thread.join(timeout=timeout)
