"""A real S3 HTTP server for tests and benches: moto's ThreadedMotoServer in its own process.

moto runs from its own virtualenv (`.venv-s3`, made by `scripts/setup-host test`): moto needs
botocore, botocore pins python-dateutil < 3 and kubernetes >= 37 (the takeover's client) needs
>= 3, so the two cannot share `.venv`. The server is an outside process to the code under test
anyway, as mariadbd is; the client under test talks to it over HTTP on loopback.

`S3Server(port)` starts it (port 0: the kernel picks one; the bound port is read back from the
child), `close()` stops it. Credentials are moto's: any key is accepted, none is checked.
`ip_address` is the address it listens on (loopback by default) and `prefix` an argv that runs
it elsewhere: `S3Server(0, link.inner_ip, link.inside([]))` serves from a bench's network
namespace (bench/netlink.py), behind its rate-limited link.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
S3_PYTHON = REPO / ".venv-s3" / "bin" / "python"

# The child: start the server, print its port, serve until stdin closes (the parent ended).
_CHILD = """
import logging
import sys
from moto.server import ThreadedMotoServer
logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
server = ThreadedMotoServer(ip_address=sys.argv[2], port=int(sys.argv[1]), verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""

ACCESS_KEY = "moto-test-key"
SECRET_KEY = "moto-test-secret"
REGION = "us-east-1"


def create_bucket(endpoint: str, bucket: str) -> None:
    """CreateBucket as a plain HTTP PUT (the store layer never creates buckets)."""
    import urllib.request

    with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")):
        pass


class S3Server:
    """moto's S3 server on `ip_address`:`port` (0 = any free port), in a child process run
    through `prefix` (e.g. `ip netns exec NS`)."""

    def __init__(self, port: int = 0, ip_address: str = "127.0.0.1",
                 prefix: Sequence[str] = ()) -> None:
        if not S3_PYTHON.exists():
            raise RuntimeError(f"{S3_PYTHON} is missing: run scripts/setup-host test")
        self.process = subprocess.Popen(
            [*prefix, str(S3_PYTHON), "-c", _CHILD, str(port), ip_address],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise RuntimeError(f"moto server did not start (printed {line!r})")
        self.port = int(line)
        self.endpoint = f"http://{ip_address}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> S3Server:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


if __name__ == "__main__":  # a manual check: start one and print its endpoint
    with S3Server(int(sys.argv[1]) if len(sys.argv) > 1 else 0) as server:
        print(server.endpoint)
