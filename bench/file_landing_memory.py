"""Peak memory of the S3 batch landing processor by file size: bounded, whatever the file size (issue 4).

    .venv/bin/python bench/file_landing_memory.py [--records 100000 1000000]

Starts its own moto server (in a temporary folder) and bootstraps the lake. For each ``--records``
count it writes a gzip JSON-lines file of generated events (5 % invalid), uploads it to the landing
bucket, and lands it with the real ``FileLanding`` (S3 store, streaming read) in a fresh process.
Just before ``land`` that process resets its peak-RSS mark (``/proc/self/clear_refs``, Linux) and
reads its resident memory; after ``land`` it reads the peak (``VmHWM``). The growth is what landing
the file cost. The design bounds it: two spooled gzip objects of at most
``SPOOL_MAX_BYTES`` in memory each (bronze, quarantine), an object under the multipart threshold read
whole for its upload, and read buffers; so the goal is that bound, the same for every file size.
Last lines: goal and the largest growth / goal.
"""

from __future__ import annotations

import argparse
import gzip
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from dataforge.bronze import SPOOL_MAX_BYTES
from dataforge.settings import Settings
from devkit.generator import GeneratorConfig, generate_events
from devkit.generator_sinks import write_jsonl
from devkit.local import local_environment
from devkit.local.bootstrap import bootstrap
from devkit.local.moto_server import MotoServer

MIB = 1024 * 1024
MULTIPART_THRESHOLD = 64 * MIB  # lambdas.common.storage.S3ObjectStore: smaller objects are put whole
GOAL_MIB = (2 * SPOOL_MAX_BYTES + MULTIPART_THRESHOLD) // MIB + 32  # + read buffers and slack


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"/proc/self/status has no {field} (this bench needs Linux)")


def land(env: dict[str, str], bucket: str, key: str, results: Any) -> None:
    """In a fresh process: land one file; report resident memory (KiB) before and its peak during."""
    os.environ.update(env)
    from lambdas.batch_landing.handler import build_landing
    from lambdas.common.storage import S3ObjectStore

    settings = Settings.from_env()
    store = S3ObjectStore(endpoint_url=settings.endpoint_url, region=settings.region)
    landing = build_landing(settings, store)
    store.client  # noqa: B018 (the S3 client is made before the measurement starts)
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    before = _status_kib("VmRSS")
    started = time.perf_counter()
    result = landing.land(bucket, key)
    seconds = time.perf_counter() - started
    after = _status_kib("VmHWM")
    results.put((before, after, seconds, result.records, result.valid, result.quarantined))


def _uncompressed_size(path: Path) -> int:
    size = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(MIB):
            size += len(chunk)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()

    spawn = multiprocessing.get_context("spawn")
    rows: list[tuple[int, int, int, float, int, int]] = []
    with tempfile.TemporaryDirectory(prefix="dataforge-bench-") as tmp:
        base = Path(tmp)
        moto = MotoServer(logs_dir=base / "logs")
        try:
            moto.start()
            moto.wait_ready()
            env = local_environment(endpoint_url=moto.endpoint_url,
                                    kafka_bootstrap_servers="127.0.0.1:9")  # (the file path needs no Kafka)
            os.environ.update(env)
            settings = Settings.from_env()
            session = boto3.Session(region_name=settings.region)
            bootstrap(settings, session)
            s3 = session.client("s3", endpoint_url=moto.endpoint_url)
            lake = settings.lake()
            for count in sorted(args.records):
                path = base / f"batch-{count}.jsonl.gz"
                report = write_jsonl(generate_events(GeneratorConfig(count=count, seed=5, invalid_fraction=0.05)),
                                     path, gzip=True)
                key = f"files/bench/{path.name}"
                s3.upload_file(str(path), lake.landing, key)
                raw_bytes = _uncompressed_size(path)
                results = spawn.Queue()
                worker = spawn.Process(target=land, args=(dict(os.environ), lake.landing, key, results))
                worker.start()
                before, after, seconds, records, valid, quarantined = results.get(timeout=3600)
                worker.join()
                assert records == report.delivered == valid + quarantined, (records, report.delivered)
                growth = (after - before) // 1024
                rows.append((count, path.stat().st_size, raw_bytes, seconds, growth, after // 1024))
                print(f"{count:>10,} records  {path.stat().st_size / MIB:8.1f} MiB gzip  {raw_bytes / MIB:8.1f} MiB "
                      f"JSON  landed in {seconds:6.1f}s  peak RSS +{growth:,} MiB (peak {after // 1024:,} MiB)",
                      flush=True)
                path.unlink()
        finally:
            moto.stop()

    worst = max(row[4] for row in rows)
    biggest = max(rows, key=lambda row: row[2])
    print(f"largest file: {biggest[2] / MIB:,.0f} MiB of JSON landed with +{biggest[4]:,} MiB of memory")
    print(f"goal: peak memory growth <= {GOAL_MIB} MiB for every file size "
          f"(2 x {SPOOL_MAX_BYTES // MIB} MiB spooled objects + {MULTIPART_THRESHOLD // MIB} MiB upload + 32)")
    print(f"ratio: {worst / GOAL_MIB:.2f} x goal (largest growth {worst:,} MiB)")


if __name__ == "__main__":
    main()
