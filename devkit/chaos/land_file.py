"""Land one batch file in a process of its own, as S3 invokes the batch landing function, and measure
that process's peak memory.

``python -m devkit.chaos.land_file --bucket B --key K`` builds the S3 ``ObjectCreated:Put`` notification
of the object as it is now (version id, ETag and size from ``HeadObject``; the shape of "Event message
structure" in the Amazon S3 user guide), hands it to the real handler (``lambdas.batch_landing.handler``)
and prints the handler's answer and its own peak resident set size (``VmHWM`` of /proc/self/status,
proc(5): the figure a Lambda's ``Max Memory Used`` reports for an invocation) on one line after
``RESULT_MARKER`` (the handler's own logs and EMF metrics go to stdout too). The settings come from the
environment, as in the Lambda. ``land_in_child`` runs it and reads that line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dataforge.errors import ServiceError

RESULT_MARKER = "DATAFORGE-LANDED "


class LandingProcessError(ServiceError):
    """The landing child failed or printed no result."""


@dataclass(frozen=True, slots=True)
class ChildLanding:
    """The handler's answer and the landing process's peak resident memory."""

    result: dict[str, Any]
    peak_rss_bytes: int


def s3_event(bucket: str, key: str, head: Mapping[str, Any]) -> dict[str, Any]:
    """The S3 notification of one created object (the fields the handler and Powertools read)."""
    obj: dict[str, Any] = {"key": key, "size": head["ContentLength"], "eTag": head["ETag"].strip('"'),
                           "sequencer": "0"}
    if head.get("VersionId") and head["VersionId"] != "null":
        obj["versionId"] = head["VersionId"]
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": os.environ.get("AWS_REGION", "us-east-1"),
        "eventTime": head["LastModified"].isoformat(), "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "local"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {}, "s3": {"s3SchemaVersion": "1.0", "configurationId": "chaos",
                                       "bucket": {"name": bucket, "ownerIdentity": {"principalId": "local"},
                                                  "arn": f"arn:aws:s3:::{bucket}"},
                                       "object": obj},
    }]}


def land_in_child(bucket: str, key: str, env: Mapping[str, str], *, launcher: Sequence[str] = ("-m",),
                  timeout: float = 600.0) -> ChildLanding:
    """Run the batch landing for ``s3://bucket/key`` in a child with ``env``; its answer and peak RSS.
    ``launcher``: the interpreter arguments before the module name (``devkit.chaos.clock.RUN_MODULE`` for a
    child under libfaketime)."""
    child = subprocess.Popen([sys.executable, *launcher, "devkit.chaos.land_file", "--bucket", bucket, "--key", key],
                             env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        child.kill()
        child.communicate()
        raise LandingProcessError(f"landing s3://{bucket}/{key} took over {timeout:.0f} s") from exc
    lines = [line.removeprefix(RESULT_MARKER) for line in out.decode().splitlines() if line.startswith(RESULT_MARKER)]
    if child.returncode != 0 or not lines:
        raise LandingProcessError(f"landing s3://{bucket}/{key} failed (exit {child.returncode}): "
                                  f"{err.decode()[-2000:]}")
    answer = json.loads(lines[-1])
    return ChildLanding(answer["result"], int(answer["peak_rss_bytes"]))


def peak_rss_bytes() -> int:
    """This process's peak resident set size (``VmHWM`` in /proc/self/status, proc(5))."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise LandingProcessError("no VmHWM line in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devkit.chaos.land_file", description=__doc__)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--key", required=True)
    args = parser.parse_args(argv)
    import boto3

    from dataforge.settings import Settings
    from devkit.fakes import LambdaContext
    from lambdas.batch_landing.handler import handler

    settings = Settings.from_env()
    s3 = boto3.session.Session(region_name=settings.region).client("s3", endpoint_url=settings.endpoint_url)
    head = s3.head_object(Bucket=args.bucket, Key=args.key)
    result = handler(s3_event(args.bucket, args.key, head), LambdaContext("batch-landing"))
    print(RESULT_MARKER + json.dumps({"result": result, "peak_rss_bytes": peak_rss_bytes()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
