"""Object store client benchmark (issue 17 §1): boto3 against obstore; prints figures, not a test.

In one run, through the same moto S3 server (tests/s3server.py: ThreadedMotoServer, port 0, in
its own process), each library uploads --gib GiB of incompressible bytes as one object (its own
multipart upload: 16 MiB parts, 4 at once) and downloads it again as a stream, in a worker
process of its own, so its CPU time (user + system, from getrusage) is its alone. The server's
CPU is read from /proc for the same intervals: it is the same server for both, and says how much
of the wall time is the server's. Libraries alternate (A B A B ...) so warm-up and the other
load on the machine fall on both; the best of --repeat runs is reported, with every run listed.

Run: .venv/bin/python -m bench.store_bench [--gib 1] [--repeat 2] [--write-docs docs/benchmarks.md]
The workers run under .venv-s3/bin/python, which has boto3, obstore and moto (scripts/setup-host).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIB = 1024 * 1024
GIB = 1024 * MIB
PART = 16 * MIB
CONCURRENCY = 4
LIBRARIES = ("boto3", "obstore")


def _payload(total: int) -> Iterator[memoryview]:
    """`total` incompressible bytes in 1 MiB chunks (one random 16 MiB block, repeated)."""
    block = memoryview(os.urandom(PART))
    sent = 0
    while sent < total:
        size = min(MIB, total - sent)
        offset = sent % PART
        yield block[offset:offset + size]
        sent += size


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Chunks:
    """A read()-able file over the payload iterator, for boto3's upload_fileobj."""

    def __init__(self, total: int) -> None:
        self._chunks = _payload(total)
        self._rest = b""

    def read(self, size: int = -1) -> bytes:
        out = [self._rest]
        have = len(self._rest)
        while size < 0 or have < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            out.append(bytes(chunk))
            have += len(chunk)
        data = b"".join(out)
        if size < 0:
            self._rest = b""
            return data
        self._rest = data[size:]
        return data[:size]


def _boto3(endpoint: str, bucket: str, key: str, total: int) -> dict[str, float]:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=CONCURRENCY * 2),
    )
    client.create_bucket(Bucket=bucket)
    config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART,
                            max_concurrency=CONCURRENCY)
    return _measure(
        lambda: client.upload_fileobj(_Chunks(total), bucket, key, Config=config),
        lambda: sum(len(chunk) for chunk in
                    client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(MIB)),
        total,
    )


def _obstore(endpoint: str, bucket: str, key: str, total: int) -> dict[str, float]:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket, endpoint=endpoint, region="us-east-1", virtual_hosted_style_request=False,
        access_key_id="bench", secret_access_key="bench", client_options={"allow_http": True},
    )
    import boto3  # only to create the bucket: obstore has no bucket API

    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="bench",
                 aws_secret_access_key="bench").create_bucket(Bucket=bucket)
    return _measure(
        lambda: obstore.put(store, key, _payload(total), chunk_size=PART,
                            max_concurrency=CONCURRENCY),
        lambda: sum(len(chunk) for chunk in
                    obstore.get(store, key).stream(min_chunk_size=MIB)),
        total,
    )


def _measure(upload: object, download: object, total: int) -> dict[str, float]:
    assert callable(upload) and callable(download)
    figures: dict[str, float] = {}
    for name, step in (("upload", upload), ("download", download)):
        print("ready", name, flush=True)
        sys.stdin.readline()  # the parent reads the server's CPU before and after each step
        cpu, start = _cpu(), time.monotonic()
        got = step()
        figures[f"{name}_seconds"] = time.monotonic() - start
        figures[f"{name}_cpu"] = _cpu() - cpu
        if name == "download" and got != total:
            raise RuntimeError(f"downloaded {got} bytes, expected {total}")
        print("done", name, flush=True)
    return figures


def worker(library: str, endpoint: str, bucket: str, total: int) -> None:
    run = _boto3 if library == "boto3" else _obstore
    print(json.dumps(run(endpoint, bucket, "bench/object", total)), flush=True)


def _proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    library: str
    upload_seconds: float
    upload_cpu: float
    download_seconds: float
    download_cpu: float
    server_upload_cpu: float
    server_download_cpu: float


def run_worker(library: str, endpoint: str, server_pid: int, total: int, n: int) -> Run:
    s3_python = REPO / ".venv-s3" / "bin" / "python"
    child = subprocess.Popen(
        [str(s3_python), "-m", "bench.store_bench", "--worker", library, "--endpoint", endpoint,
         "--bucket", f"bench-{library}-{n}", "--bytes", str(total)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    assert child.stdin is not None and child.stdout is not None
    server_cpu: dict[str, float] = {}
    try:
        for step in ("upload", "download"):
            if child.stdout.readline().split() != ["ready", step]:
                raise RuntimeError(f"{library} worker failed before {step}")
            before = _proc_cpu(server_pid)
            child.stdin.write("go\n")
            child.stdin.flush()
            if child.stdout.readline().split() != ["done", step]:
                raise RuntimeError(f"{library} worker failed during {step}")
            server_cpu[step] = _proc_cpu(server_pid) - before
        figures = json.loads(child.stdout.readline())
    finally:
        child.stdin.close()
        if child.wait(timeout=60) != 0:
            raise RuntimeError(f"{library} worker exited {child.returncode}")
    return Run(library, figures["upload_seconds"], figures["upload_cpu"],
               figures["download_seconds"], figures["download_cpu"],
               server_cpu["upload"], server_cpu["download"])


def _per_gib(value: float, total: int) -> float:
    return value * GIB / total


def report(runs: list[Run], total: int) -> str:
    best = {lib: (min((r for r in runs if r.library == lib), key=lambda r: r.upload_seconds),
                  min((r for r in runs if r.library == lib), key=lambda r: r.download_seconds))
            for lib in LIBRARIES}
    mb = total / 1e6
    lines = [
        "`bench/store_bench.py`: boto3 against obstore through the same moto S3 server, "
        "up and down, each library in a worker process of its own (client CPU from getrusage, "
        "the server's from /proc). Chosen: obstore (docs/backup.md says why).",
        "",
        f"{total / GIB:.2f} GiB, one object, {PART // MIB} MiB parts, {CONCURRENCY} at once, "
        f"moto server on loopback (Python {platform.python_version()}); {os.cpu_count()} cores "
        f"shared with other work; best of {len(runs) // len(LIBRARIES)} runs per library.",
        "",
        "| library | upload MB/s | client CPU s/GiB up | download MB/s | client CPU s/GiB down "
        "| server CPU s/GiB up / down |",
        "|---|---|---|---|---|---|",
    ]
    for lib, (up, down) in best.items():
        lines.append(
            f"| {lib} | {mb / up.upload_seconds:.0f} | {_per_gib(up.upload_cpu, total):.2f} "
            f"| {mb / down.download_seconds:.0f} | {_per_gib(down.download_cpu, total):.2f} "
            f"| {_per_gib(up.server_upload_cpu, total):.2f} / "
            f"{_per_gib(down.server_download_cpu, total):.2f} |")
    (b_up, b_down), (o_up, o_down) = best["boto3"], best["obstore"]
    lines += [
        "",
        "Ratios obstore/boto3 in this run: upload time "
        f"{o_up.upload_seconds / b_up.upload_seconds:.2f}, download time "
        f"{o_down.download_seconds / b_down.download_seconds:.2f}, client CPU "
        f"up {o_up.upload_cpu / b_up.upload_cpu:.2f}, down "
        f"{o_down.download_cpu / b_down.download_cpu:.2f}.",
        "",
        "Every run (library: upload s, CPU s; download s, CPU s):",
    ]
    lines += [f"- {r.library}: {r.upload_seconds:.1f}, {r.upload_cpu:.1f}; "
              f"{r.download_seconds:.1f}, {r.download_cpu:.1f}" for r in runs]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--write-docs", type=Path)
    parser.add_argument("--worker", choices=LIBRARIES)
    parser.add_argument("--endpoint")
    parser.add_argument("--bucket")
    parser.add_argument("--bytes", type=int)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.endpoint, args.bucket, args.bytes)
        return
    # Imported here, not at the top: the workers run under .venv-s3, which has neither the
    # harness's nor the test helpers' dependencies.
    from bench.harness import LoadWatch, publish
    from tests.s3server import S3Server

    load = LoadWatch()
    total = int(args.gib * GIB)
    runs: list[Run] = []
    with S3Server(0) as server:
        for n in range(args.repeat):
            for library in LIBRARIES:
                run = run_worker(library, server.endpoint, server.pid, total, n)
                print(run, flush=True)
                runs.append(run)
                load.sample()
    publish(report(runs, total), section="store-bench", heading="## Object store client",
            load=load, write_docs=args.write_docs)


if __name__ == "__main__":
    main()
