"""A live scrape during a local-set clone: while `local scale` adds mysql-1, its clone step
answers on the sidecar's http port with /readyz 503 "clone in progress" and /metrics whose
`mysqlsts_clone_bytes_total` rises while the phase is `streaming`; afterwards the sidecar
exports the clone's final byte count under the same name.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.localset import LocalSet, LocalSetFactory

pytestmark = pytest.mark.integration

STRIDE = 10  # mysqlsts.local.spec.DEFAULT_PORT_STRIDE
PAYLOAD_MB = 120  # enough for a stream that lasts more than a few scrapes


@pytest.fixture(scope="module")
def one_pod_set(local_set_module: LocalSetFactory) -> LocalSet:
    return local_set_module(replicas=1)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _samples(text: str) -> dict[tuple[str, str], float]:
    return {(s.name, s.labels.get("phase", "")): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def test_a_live_scrape_during_a_clone_shows_the_bytes_rising(one_pod_set: LocalSet) -> None:
    local = one_pod_set
    local.sql(0, "CREATE DATABASE IF NOT EXISTS bulk",
              "CREATE TABLE IF NOT EXISTS bulk.t (id INT PRIMARY KEY AUTO_INCREMENT, "
              "v LONGBLOB)",
              "INSERT INTO bulk.t (v) VALUES (REPEAT(RANDOM_BYTES(1024), 1024))")
    # 1 MiB rows, doubled up to PAYLOAD_MB.
    while local.value(0, "SELECT COUNT(*) FROM bulk.t") < PAYLOAD_MB:
        local.sql(0, "INSERT INTO bulk.t (v) SELECT v FROM bulk.t")
    http_port = int(local.pod(0)["http"]["port"]) + STRIDE

    scaler = local.scale_in_background(2)
    seen: list[tuple[float, str, str, int]] = []  # (bytes, phase, readyz body, readyz code)
    try:
        deadline = time.monotonic() + 300
        while scaler.poll() is None and time.monotonic() < deadline:
            code, body = _get(http_port, "/metrics")
            if code == 200 and "mysqlsts_clone_phase" in body:
                samples = _samples(body)
                phase = next(p for (n, p), v in samples.items()
                             if n == "mysqlsts_clone_phase" and v == 1)
                ready_code, ready = _get(http_port, "/readyz")
                # The clone may end between the two requests, and the sidecar then answers
                # /readyz: keep the pair only if the clone still serves after it.
                after, later = _get(http_port, "/metrics")
                if after != 200 or "mysqlsts_clone_phase" not in later:
                    break
                seen.append((samples[("mysqlsts_clone_bytes_total", "")], phase, ready,
                             ready_code))
            elif seen and code == 200:
                break  # the sidecar answers now: the clone is over
            time.sleep(0.05)
        out, err = scaler.communicate(timeout=600)
        assert scaler.returncode == 0, err[-3000:]
    finally:
        if scaler.poll() is None:
            scaler.kill()

    streaming = [b for b, phase, _, _ in seen if phase == "streaming"]
    assert len(set(streaming)) >= 3, f"too few distinct scrapes while streaming: {seen[:5]}"
    assert streaming == sorted(streaming) and streaming[-1] > streaming[0]
    assert all(code == 503 and body.startswith("clone in progress")
               for _, _, body, code in seen), seen[:3]
    order = ["waiting_for_donor", "streaming", "preparing", "moving", "done"]
    ranks = [order.index(phase) for _, phase, _, _ in seen]
    assert ranks == sorted(ranks), f"phases out of order: {[p for _, p, _, _ in seen]}"

    local.wait_ready(2, timeout=180)
    _, after = _get(http_port, "/metrics")
    final = _samples(after)[("mysqlsts_clone_bytes_total", "")]
    assert final >= streaming[-1] > 0  # the sidecar carries the counter on from the record
