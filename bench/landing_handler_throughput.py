"""MSK landing handler throughput on one core: 10k-record MSK batches -> gzip bronze/quarantine bytes.

S3 is excluded (a store that discards the bytes); everything else of the real handler is timed:
Powertools parse, base64 decode, validation, bronze line building, gzip. Two references run in the
same process on the same records (both also base64-decode, as every MSK consumer must):

- naive peer: ``json.loads`` + ``jsonschema`` validation against the contract's JSON Schema + ``json.dumps``;
- ceiling: a bare ``msgspec`` typed decode (``TransactionEvent``) + ``msgspec`` encode.

Usage: .venv/bin/python bench/landing_handler_throughput.py [--records 10000] [--repeat 5]
Goal: >= 0.5 x ceiling and >= 10 x naive.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import io
import json
import time
from collections.abc import Callable
from typing import IO, Any

import jsonschema
import msgspec

from dataforge.contract import TransactionEvent, Validator, json_schema
from dataforge.reference import default_fx
from devkit.fakes import LambdaContext
from devkit.generator import GeneratorConfig, generate_events
from lambdas.common.config import LandingConfig
from lambdas.common.kafka_landing import KafkaLanding
from lambdas.common.storage import StoredObject
from lambdas.msk_landing.handler import logger, make_handler


class NullStore:
    def __init__(self) -> None:
        self.bytes = 0

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.bytes += len(body)

    def put_file(self, bucket: str, key: str, body: IO[bytes], size: int) -> None:
        self.bytes += size

    def open(self, bucket: str, key: str, version_id: str | None, etag: str | None) -> StoredObject:
        raise NotImplementedError


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def msk_event(n: int, invalid: float) -> tuple[dict[str, Any], list[str]]:
    """An MSK batch event of ``n`` generated records, and their base64 values."""
    events = list(generate_events(GeneratorConfig(count=n, seed=42, invalid_fraction=invalid,
                                                  duplicate_fraction=0.02)))
    ts = int(time.time() * 1000)
    records = [{"topic": "transactions", "partition": 0, "offset": i, "timestamp": ts, "timestampType": "CREATE_TIME",
                "key": base64.b64encode(e.key).decode(), "value": base64.b64encode(e.value).decode(), "headers": []}
               for i, e in enumerate(events)]
    event = {"eventSource": "aws:kafka", "eventSourceArn": "arn:aws:kafka:local", "bootstrapServers": "local:9092",
             "records": {"transactions-0": records}}
    return event, [r["value"] for r in records]


def handler_run(event: dict[str, Any], store: NullStore) -> Callable[[], None]:
    """One invocation of the real handler on ``event``, writing to ``store``."""
    landing = KafkaLanding(LandingConfig("bronze", "quarantine", None, False, None, "us-east-1"), store,
                           Validator(default_fx().currencies))
    handler = make_handler(lambda: landing)
    logger.setLevel("WARNING")
    context = LambdaContext("msk-landing")

    def run_handler() -> None:
        with contextlib.redirect_stdout(io.StringIO()):  # the EMF metrics line
            handler(event, context)

    return run_handler


def ceiling_run(values: list[str]) -> Callable[[], None]:
    """The ceiling: base64 decode, a bare typed decode and an encode of each value."""
    decoder = msgspec.json.Decoder(TransactionEvent)
    encoder = msgspec.json.Encoder()
    a2b = binascii.a2b_base64

    def ceiling() -> None:
        out = []
        for value in values:
            try:
                out.append(encoder.encode(decoder.decode(a2b(value))))
            except msgspec.DecodeError:
                out.append(b"")
        b"".join(out)

    return ceiling


def naive_run(values: list[str]) -> Callable[[], None]:
    """The naive peer: base64 decode, ``json.loads``, JSON Schema validation and ``json.dumps`` of each value."""
    validator = jsonschema.Draft202012Validator(json_schema())

    def naive() -> None:
        out = []
        for value in values:
            try:
                obj = json.loads(base64.b64decode(value))
            except ValueError:
                continue
            out.append(json.dumps({"event": obj, "valid": validator.is_valid(obj)}).encode())
        b"".join(out)

    return naive


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--invalid", type=float, default=0.05)
    args = parser.parse_args()
    n = args.records
    event, values = msk_event(n, args.invalid)

    store = NullStore()
    run_handler = handler_run(event, store)
    ceiling, naive = ceiling_run(values), naive_run(values)

    run_handler()  # warm-up (cold start: reference data, decoders)
    t_handler = best(run_handler, args.repeat)
    per_batch_bytes = store.bytes // (args.repeat + 1)
    t_ceiling = best(ceiling, args.repeat)
    t_naive = best(naive, 1)
    rate = n / t_handler
    ceiling_rate = n / t_ceiling
    naive_rate = n / t_naive
    print(f"records per batch       {n}")
    print(f"handler (gzip bronze)   {rate:12,.0f} records/s   ({per_batch_bytes:,} gzip bytes per batch)")
    print(f"ceiling (msgspec)       {ceiling_rate:12,.0f} records/s")
    print(f"naive (json+jsonschema) {naive_rate:12,.0f} records/s")
    print("goal: handler >= 0.5 x ceiling and >= 10 x naive")
    print(f"ratio: {rate / ceiling_rate:.2f} x ceiling, {rate / naive_rate:.1f} x naive")


if __name__ == "__main__":
    main()
