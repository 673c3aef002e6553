"""Helpers the local pods and supervisor lean on: reasons from logs, the readiness probe."""

import http.server
import threading
from pathlib import Path

from mysqlsts.adapters.readyz import Readiness, probe_readiness
from mysqlsts.local.procs import last_line


def test_last_line_reports_the_telling_line_of_the_latest_run(tmp_path: Path) -> None:
    log = tmp_path / "mariadbd.err"
    log.write_text("old run: [ERROR] something long ago\n")
    since = log.stat().st_size
    with log.open("a") as handle:
        handle.write("[Note] starting\n[ERROR] unknown variable 'x=1'\n[ERROR] Aborting\n\n")
    assert last_line(log, since) == "[ERROR] Aborting"
    assert last_line(log, since, skip=("Aborting",)) == "[ERROR] unknown variable 'x=1'"
    assert last_line(log, log.stat().st_size) is None
    assert last_line(tmp_path / "missing.log") is None


def test_readiness_probe_reports_the_sidecars_answer() -> None:
    answers = {"/readyz": (503, b"replication IO thread not running; error 1045: denied\n")}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            status, body = answers[self.path]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert probe_readiness("127.0.0.1", port) == Readiness(
            False, "replication IO thread not running; error 1045: denied")
        answers["/readyz"] = (200, b"ok\n")
        assert probe_readiness("127.0.0.1", port) == Readiness(True)
        answers["/readyz"] = (503, b"")
        assert probe_readiness("127.0.0.1", port) == Readiness(False, "/readyz answered 503")
    finally:
        server.shutdown()
        server.server_close()
    assert probe_readiness("127.0.0.1", port) == Readiness(False, None)  # nothing listens
