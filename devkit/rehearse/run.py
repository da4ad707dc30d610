"""``dataforge rehearse --stack <env>``: render the stack, build its artifacts, create its stateful
resources on a moto server, then run every Lambda function from its artifacts with each trigger the stack
declares, and report what each answered.

A function is rehearsed with exactly what the stack declares for it: its zip and layers (the layer's
x86-64 twin, checked to hold the same packages at the same versions), its handler string, its
environment variables (bucket, table, topic and workgroup names as the stack wires them; only the AWS
endpoint and credentials point at the moto server), and the events of its triggers: the MSK event
source mapping, the S3 bucket notification, the EventBridge schedule, API Gateway's proxy events
for every route of the declared API (``devkit.rehearse.apigw``), and the declared input of an
``aws.lambda_.Invocation`` (the kafka-topics function, against the run's local Kafka broker, judged on
the broker: ``devkit.rehearse.kafka_topics``).

Then, on the same endpoint (bronze holds what the functions landed), every Glue job run the stack's
triggers start, from the uploaded script, zip and wheels, with Glue 5.1's Python (``devkit.rehearse.glue``).
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import boto3

from dataforge import envvars
from dataforge.errors import ServiceError
from devkit.local import FAKE_AWS_ENV, LOCAL_AWS_REGION
from devkit.local.moto_server import MotoServer
from devkit.paths import samples_dir
from devkit.rehearse import events, kafka_topics, msk_iam
from devkit.rehearse.glue import GluePlatform, rehearse_glue
from devkit.rehearse.lambdas import (
    EmittedMetric,
    FunctionSpec,
    Invocations,
    function_specs,
    install,
    invoke,
    same_packages,
    stack_account,
)
from devkit.rehearse.provision import provision
from infra import artifacts
from infra.plan import Rendered, render
from lambdas.common.kafka_topics import TopicSpec

FOREIGN_TOP_LEVEL: Final = frozenset({"devkit", "tests", "bench", "infra", "spark", "panel_dashboard", "pulumi"})
"""Packages no function may load: the toolkit, tests, other deployables, Pulumi."""
MSK_RECORDS: Final = 200
MSK_INVALID_FRACTION: Final = 0.05
BATCH_SAMPLE: Final = "transactions.jsonl"
Progress = Callable[[str], None]


@dataclass(slots=True)
class Check:
    """One trigger of one function: what was sent and whether the answer is what AWS would accept."""

    function: str
    trigger: str
    ok: bool
    detail: str
    kind: str = "lambda"
    """What was rehearsed: ``lambda`` (a function), ``glue`` (a Glue job run), or another deployable's."""


@dataclass(slots=True)
class Report:
    stack: str
    checks: list[Check] = field(default_factory=list)
    layer_differences: list[str] = field(default_factory=list)
    seconds: float = 0.0
    emitted: dict[str, list[EmittedMetric]] = field(default_factory=dict)
    """The EMF metrics each function (by name) printed during its rehearsed invocations."""

    @property
    def ok(self) -> bool:
        return not self.layer_differences and bool(self.checks) and all(c.ok for c in self.checks)

    def lines(self) -> list[str]:
        out = [f"{'ok ' if c.ok else 'FAIL'} {c.function:32} {c.trigger:26} {c.detail}" for c in self.checks]
        out += [f"FAIL layer twin differs: {d}" for d in self.layer_differences]
        out.append(f"rehearsal of {self.stack}: {'green' if self.ok else 'FAILED'} "
                   f"({sum(c.ok for c in self.checks)}/{len(self.checks)} checks, {self.seconds:.1f} s)")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"stack": self.stack, "ok": self.ok, "seconds": round(self.seconds, 2),
                "layer_differences": self.layer_differences,
                "checks": [{"function": c.function, "trigger": c.trigger, "ok": c.ok, "detail": c.detail,
                            "kind": c.kind} for c in self.checks],
                "emitted": {function: [{"namespace": m.namespace, "name": m.name, "dimensions": dict(m.dimensions)}
                                       for m in metrics] for function, metrics in self.emitted.items()}}


@dataclass(frozen=True, slots=True)
class Platform:
    """The embedded AWS endpoint and what a function's process is told to reach it."""

    endpoint_url: str
    session: boto3.Session
    region: str
    account: str
    kafka_bootstrap_servers: str | None = None  # the run's local broker (the topics function, the Glue part)

    @property
    def overrides(self) -> dict[str, str]:
        return {**FAKE_AWS_ENV, envvars.AWS_ENDPOINT_URL: self.endpoint_url, "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region}

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]


@dataclass(frozen=True, slots=True)
class Trigger:
    name: str
    events: list[dict[str, Any]]
    judge: Callable[[Sequence[dict[str, Any]]], tuple[bool, str]]
    overrides: Mapping[str, str] = field(default_factory=dict)
    """Environment the function's process gets beyond the platform's (e.g. the local broker's address)."""


def _function_arn_matches(arn: Any, spec: FunctionSpec) -> bool:
    return isinstance(arn, str) and (arn == spec.arn or arn.endswith(f":function:{spec.name}") or arn == spec.name)


def _all_ok(results: Sequence[dict[str, Any]]) -> tuple[bool, str]:
    failed = [r for r in results if not r.get("ok")]
    if failed:
        return False, f"{failed[0].get('error')}: {str(failed[0].get('message'))[:160]}"
    return True, f"{len(results)} invocation(s) answered"


def _stored(platform: Platform, keys: Sequence[str]) -> list[str]:
    """Those of ``keys`` (``s3://bucket/key``) that are not in the moto server's S3."""
    s3, missing = platform.client("s3"), []
    for uri in keys:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            s3.head_object(Bucket=bucket, Key=key)
        except s3.exceptions.ClientError:
            missing.append(uri)
    return missing


def _msk_trigger(rendered: Rendered, spec: FunctionSpec, platform: Platform) -> Iterator[Trigger]:
    from devkit.generator import GeneratorConfig, generate_events

    for mapping in rendered.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
        if not _function_arn_matches(mapping.inputs.get("functionName"), spec):
            continue
        generated = list(generate_events(GeneratorConfig(count=MSK_RECORDS, seed=11,
                                                         invalid_fraction=MSK_INVALID_FRACTION)))
        invalid = sum(1 for g in generated if g.expected_reason is not None)
        event = events.msk_event([(g.key or None, g.value) for g in generated], topic=mapping.inputs["topics"][0],
                                 event_source_arn=mapping.inputs["eventSourceArn"])

        def judge(results: Sequence[dict[str, Any]], sent: int = len(generated), bad: int = invalid
                  ) -> tuple[bool, str]:
            ok, detail = _all_ok(results)
            if not ok:
                return ok, detail
            answer = results[0]["result"]
            missing = _stored(platform, answer.get("objects") or [])
            good = (answer.get("records"), answer.get("quarantined")) == (sent, bad) and bool(answer.get("objects")) \
                and not missing
            detail = (f"{sent} records -> {answer.get('valid')} valid, {answer.get('quarantined')} quarantined, "
                      f"{len(answer.get('objects') or [])} objects")
            return good, detail + ("" if good else f" (expected {bad} quarantined; not stored: {missing[:3]})")

        yield Trigger(f"MSK {mapping.inputs['topics'][0]}", [event], judge)


def _s3_trigger(rendered: Rendered, spec: FunctionSpec, platform: Platform) -> Iterator[Trigger]:
    expected = json.loads((samples_dir() / "batch" / "expected.json").read_text())[BATCH_SAMPLE]
    for notification in rendered.of_type("aws:s3/bucketNotification:BucketNotification"):
        for target in notification.inputs.get("lambdaFunctions") or []:
            if not _function_arn_matches(target.get("lambdaFunctionArn"), spec):
                continue
            bucket, key = notification.inputs["bucket"], f"{target.get('filterPrefix', '')}rehearsal/{BATCH_SAMPLE}"
            body = (samples_dir() / "batch" / BATCH_SAMPLE).read_bytes()
            s3 = platform.client("s3")
            put = s3.put_object(Bucket=bucket, Key=key, Body=body)
            event = events.s3_event(bucket=bucket, key=key, size=len(body), etag=put["ETag"].strip('"'),
                                    version_id=put.get("VersionId"), region=platform.region)

            def judge(results: Sequence[dict[str, Any]], bucket: str = bucket, key: str = key) -> tuple[bool, str]:
                ok, detail = _all_ok(results)
                if not ok:
                    return ok, detail
                files = results[0]["result"].get("files") or []
                landed = files[0] if files else {}
                want = (expected["records"], sum(expected["quarantined"].values()))
                good = (landed.get("records"), landed.get("quarantined")) == want and bool(landed.get("objects")) \
                    and not _stored(platform, landed.get("objects") or [])
                return good, f"s3://{bucket}/{key}: {landed.get('records')} records, " \
                             f"{landed.get('quarantined')} quarantined" + ("" if good else f" (expected {want})")

            yield Trigger(f"S3 {bucket}", [event], judge)


def _schedule_trigger(rendered: Rendered, spec: FunctionSpec, platform: Platform) -> Iterator[Trigger]:
    for target in rendered.of_type("aws:cloudwatch/eventTarget:EventTarget"):
        if not _function_arn_matches(target.inputs.get("arn"), spec):
            continue
        rule = target.inputs["rule"]
        rule_arn = f"arn:aws:events:{platform.region}:{platform.account}:rule/{rule}"
        yield Trigger(f"schedule {rule}", [events.scheduled_event(rule_arn=rule_arn, account=platform.account,
                                                                   region=platform.region)], _all_ok)


def _invocation_trigger(rendered: Rendered, spec: FunctionSpec, platform: Platform) -> Iterator[Trigger]:
    for invocation in rendered.of_type(kafka_topics.INVOCATION):
        if not _function_arn_matches(invocation.inputs.get("functionName"), spec):
            continue
        name = f"Invocation {invocation.name}"
        if platform.kafka_bootstrap_servers is None:
            yield Trigger(name, [], lambda _results: (False, "no local Kafka broker for the Invocation"))
            continue
        servers, body = platform.kafka_bootstrap_servers, invocation.inputs["input"]
        try:
            declared: list[TopicSpec] | str = kafka_topics.declared_topics(body)
        except ServiceError as exc:
            declared = str(exc)  # still sent: the function's own answer to it is part of the report

        def judge(results: Sequence[dict[str, Any]], declared: list[TopicSpec] | str = declared,
                  servers: str = servers) -> tuple[bool, str]:
            if isinstance(declared, str):
                return False, f"{declared}; the function answered {_all_ok(results)[1]}"
            return kafka_topics.judge(declared, results, servers)

        yield Trigger(name, [json.loads(body)] * kafka_topics.RUNS, judge, kafka_topics.overrides(servers))


def _api_trigger(rendered: Rendered, spec: FunctionSpec) -> Iterator[Trigger]:
    try:
        from devkit.rehearse import apigw  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        yield Trigger("API Gateway", [], lambda _results: (False, "no API Gateway events (devkit.rehearse.apigw)"))
        return
    yield from apigw.triggers(rendered, spec)


def triggers(rendered: Rendered, spec: FunctionSpec, platform: Platform) -> list[Trigger]:
    """Every trigger the stack declares for ``spec``, with its events and how to judge the answers."""
    found = [*_msk_trigger(rendered, spec, platform), *_s3_trigger(rendered, spec, platform),
             *_schedule_trigger(rendered, spec, platform), *_invocation_trigger(rendered, spec, platform)]
    if any(p.inputs.get("principal") == "apigateway.amazonaws.com"
           and _function_arn_matches(p.inputs.get("function"), spec)
           for p in rendered.of_type("aws:lambda/permission:Permission")):
        found += list(_api_trigger(rendered, spec))
    return found


def _rehearse_function(spec: FunctionSpec, rendered: Rendered, platform: Platform, workdir: Path,
                       layers: Sequence[Path], report: Report) -> list[Check]:
    sandbox = install(spec, workdir / spec.name, layers)
    found = triggers(rendered, spec, platform)
    if not found:
        return [Check(spec.name, "-", False, "the stack declares no trigger for this function")]
    sent = [event for trigger in found for event in trigger.events]
    overrides = {**platform.overrides, **{k: v for trigger in found for k, v in trigger.overrides.items()}}
    answered: Invocations = invoke(sandbox, sent, overrides)
    report.emitted[spec.name] = answered.metrics
    if answered.init_error is not None:
        error = answered.init_error
        return [Check(spec.name, "init", False, f"{error['error']}: {error['message'][:300]}")]
    checks, position = [], 0
    for trigger in found:
        results = answered.results[position:position + len(trigger.events)]
        position += len(trigger.events)
        ok, detail = trigger.judge(results)
        checks.append(Check(spec.name, trigger.name, ok, detail))
    foreign = sorted(FOREIGN_TOP_LEVEL & set(answered.loaded))
    checks.append(Check(spec.name, "imports", not foreign,
                        f"loaded {', '.join(foreign)}" if foreign else "only its zip, its layers and the runtime"))
    return checks


@contextmanager
def _platform(rendered: Rendered, workdir: Path, kafka_bootstrap_servers: str | None = None) -> Iterator[Platform]:
    account = stack_account(rendered)
    with MotoServer(logs_dir=workdir / "logs", env={"MOTO_ACCOUNT_ID": account}) as moto:
        session = boto3.Session(aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
                                aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                                region_name=LOCAL_AWS_REGION)
        platform = Platform(moto.endpoint_url, session, LOCAL_AWS_REGION, account, kafka_bootstrap_servers)
        provision(rendered, session, moto.endpoint_url)
        yield platform


@contextmanager
def _kafka(given: str | None, base: Path, progress: Progress) -> Iterator[str]:
    """``given`` (a broker the caller runs, e.g. a test fixture's), else a local broker for the run."""
    if given:
        yield given
        return
    from devkit.local.kafka import KafkaBroker

    progress("starting a local Kafka broker for the run (the topics function, the streaming job)")
    with KafkaBroker(base / "kafka", logs_dir=base / "logs") as broker:
        yield broker.bootstrap_servers


def _rehearse_glue(rendered: Rendered, platform: Platform, base: Path, progress: Progress,
                   kafka_bootstrap_servers: str | None) -> list[Check]:
    """Every Glue job run the stack's triggers start (``devkit.rehearse.glue``), one check per run."""
    with _kafka(kafka_bootstrap_servers, base, progress) as servers:
        done = rehearse_glue(rendered, GluePlatform(platform.endpoint_url, platform.overrides, servers),
                             base / "glue", progress=progress)
    return [Check(r.job, r.trigger, r.ok, r.detail, kind="glue") for r in done.results]


def rehearse(stack: str, *, workdir: Path | None = None, progress: Progress = lambda _m: None,
             rendered: Rendered | None = None, glue: bool = True, kafka_bootstrap_servers: str | None = None
             ) -> Report:
    """Rehearse every Lambda function of ``stack`` (see the module docstring), then, with ``glue``, every
    Glue job run after them on the same endpoint (bronze holds what the functions landed), against
    ``kafka_bootstrap_servers`` or a broker started for the run."""
    started = time.monotonic()
    report = Report(stack)
    progress(f"rendering {stack} and building its artifacts")
    rendered = rendered or render(stack)
    specs = function_specs(rendered, artifacts.build_dir())
    progress("building the layer's x86-64 twin from the same lock")
    arm64, twin = artifacts.core_layer(artifacts.ARM64), artifacts.core_layer(artifacts.X86_64)
    topics_arm64, topics_twin = artifacts.topics_layer(artifacts.ARM64), artifacts.topics_layer(artifacts.X86_64)
    report.layer_differences = same_packages(arm64.path, twin.path) + same_packages(topics_arm64.path,
                                                                                     topics_twin.path)
    twins = {arm64.path: twin.path, topics_arm64.path: topics_twin.path}
    # One broker for the run when anything needs one: the stack's topics function creates the topic the
    # streaming job then reads.
    needs_kafka = glue or bool(rendered.of_type(kafka_topics.INVOCATION))
    with tempfile.TemporaryDirectory(prefix=f"dataforge-rehearse-{stack}-") as tmp:
        base = workdir or Path(tmp)
        with (_kafka(kafka_bootstrap_servers, base, progress) if needs_kafka else nullcontext(None)) as servers, \
                _platform(rendered, base, servers) as platform:
            for spec in specs:
                progress(f"{spec.name}: {spec.handler} from {spec.code.name}")
                layers = [twins.get(layer, layer) for layer in spec.layers]
                report.checks += _rehearse_function(spec, rendered, platform, base, layers, report)
            if glue:
                report.checks += _rehearse_glue(rendered, platform, base, progress, servers)
    progress(f"{msk_iam.JOB}: MSK IAM options and --extra-jars in a JVM")
    report.checks += [Check(msk_iam.JOB, f.name, f.ok, f.detail, kind="msk-iam") for f in msk_iam.findings(rendered)]
    report.seconds = time.monotonic() - started
    return report
