"""The streaming job's MSK IAM authentication, rehearsed from the rendered stack.

The job's declared default arguments become its ``Settings`` (as ``spark.runtime.settings_from`` reads
them on Glue); the job's own code turns them into its Kafka source options
(``spark.kafka.source_options``), and Spark hands the ``kafka.``-prefixed ones to its Kafka consumer
without the prefix (``spark.kafka.client_config``). Two checks follow:

- **options**: that client configuration holds the one the MSK IAM library documents, property for
  property (``DOCUMENTED_IAM_CLIENT``, kept here as data with its source, apart from the job's code);
- **classpath**: in a JVM whose classpath is exactly the declared ``--extra-jars`` (the built files the
  stack uploads under those keys, checked against the declared content hashes) plus what Glue provides
  for a streaming job, stood in for by Spark 3.5.6's jars (pyspark's, Glue 5.1's Spark) and the Kafka
  source's kafka-clients (``build/maven/spark``), the login module and the callback handler load and a
  ``KafkaConsumer`` accepts the configuration (``java/KafkaClientProbe.java``). Constructing the
  consumer logs in through the login module and configures the callback handler, which builds the
  library's AWS credential provider: the AWS SDK classes it needs must be among the jars. The broker
  address is replaced by a loopback one: the client resolves bootstrap names when it is constructed,
  and the probe needs no network (it never connects).

Not proven here: the broker side (MSK accepting the signed authentication, the job role's
``kafka-cluster:*`` permissions, the network path to port 9098), and Glue's own classpath beyond Spark's
jars and the Kafka source (docs/spark.md, "MSK IAM authentication").
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import Final

from dataforge.errors import DataForgeError, ServiceError
from dataforge.settings import Settings
from devkit.local.maven import resolve_jars
from devkit.paths import cache_dir
from infra import artifacts
from infra.plan import Rendered, Resource
from spark import kafka

JOB: Final = "streaming_enrichment"
DOCUMENTED_IAM_CLIENT: Final[Mapping[str, str]] = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "AWS_MSK_IAM",
    "sasl.jaas.config": "software.amazon.msk.auth.iam.IAMLoginModule required;",
    "sasl.client.callback.handler.class": "software.amazon.msk.auth.iam.IAMClientCallbackHandler",
}
DOCUMENTED_SOURCE: Final = ("Amazon MSK Library for AWS Identity and Access Management (aws/aws-msk-iam-auth), "
                            "README.md, 'Configuring a Kafka client to use AWS IAM'")
PROBE: Final = Path(__file__).resolve().parent / "java" / "KafkaClientProbe.java"
PROBE_BOOTSTRAP: Final = "127.0.0.1:9098"
"""The broker address the probe is given instead of the declared one (never contacted)."""
KAFKA_SOURCE_BUNDLE: Final = "spark"
PROBE_TIMEOUT_SECONDS: Final = 120


class MskIamRehearsalError(ServiceError):
    """The rendered stack does not declare what this rehearsal needs."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One check of the streaming job's Kafka authentication: its name, verdict and what was seen."""

    name: str
    ok: bool
    detail: str


def streaming_job(rendered: Rendered) -> Resource:
    """The rendered stack's Glue streaming job (command ``gluestreaming``)."""
    jobs = [job for job in rendered.of_type("aws:glue/job:Job")
            if (job.inputs.get("command") or {}).get("name") == "gluestreaming"]
    if len(jobs) != 1:
        raise MskIamRehearsalError(f"{rendered.stack}: expected one Glue streaming job, found {len(jobs)}")
    return jobs[0]


def declared_settings(job: Resource) -> Settings:
    """The job's settings from its declared ``--DATAFORGE_*`` arguments (nothing from this process)."""
    arguments: Mapping[str, str] = job.inputs.get("defaultArguments") or {}
    return Settings.from_env({name[2:]: value for name, value in arguments.items()
                              if name.startswith("--DATAFORGE_")})


def client_config(job: Resource) -> dict[str, str]:
    """The Kafka client configuration the job's code builds for its declared settings."""
    return kafka.client_config(kafka.source_options(declared_settings(job)))


def options_finding(config: Mapping[str, str]) -> Finding:
    """Whether ``config`` holds every property of ``DOCUMENTED_IAM_CLIENT`` with its documented value."""
    wrong = {key: config.get(key) for key, value in DOCUMENTED_IAM_CLIENT.items() if config.get(key) != value}
    if wrong:
        return Finding("MSK IAM options", False, f"differs from {DOCUMENTED_SOURCE}: {wrong}")
    return Finding("MSK IAM options", True, f"SASL_SSL + AWS_MSK_IAM as documented ({len(DOCUMENTED_IAM_CLIENT)} "
                                            "properties)")


def declared_jars(rendered: Rendered, job: Resource, artifacts_dir: Path) -> list[Path]:
    """The built files of the job's ``--extra-jars``: each S3 URI must be a declared object whose source file
    (in ``artifacts_dir``) has the declared content hash."""
    uris = [uri for uri in str((job.inputs.get("defaultArguments") or {}).get("--extra-jars", "")).split(",") if uri]
    objects = {(o.inputs.get("bucket"), o.inputs.get("key")): o
               for o in rendered.of_type("aws:s3/bucketObject:BucketObject")}
    files = []
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        declared = objects.get((bucket, key))
        if declared is None:
            raise MskIamRehearsalError(f"--extra-jars names {uri}, which the stack does not upload")
        path = artifacts_dir / str((declared.inputs.get("source") or {}).get("file", ""))
        if not path.is_file() or sha256(path.read_bytes()).hexdigest() != declared.inputs.get("sourceHash"):
            raise MskIamRehearsalError(f"{uri}: its built file {path} is missing or differs from the declared hash")
        files.append(path)
    return files


def provided_jars() -> list[Path]:
    """What stands in for Glue's classpath: Spark's jars (pyspark 3.5.6) and the Kafka source's kafka-clients."""
    import pyspark

    spark_jars = sorted((Path(pyspark.__file__).parent / "jars").glob("*.jar"))
    clients = [jar for jar in resolve_jars(KAFKA_SOURCE_BUNDLE) if jar.name.startswith("kafka-clients-")]
    if not spark_jars or not clients:
        raise MskIamRehearsalError("no Spark jars (pyspark) or no kafka-clients jar (build/maven/spark): "
                                   "run `make setup`")
    return [*clients, *spark_jars]


def compiled_probe(provided: Sequence[Path]) -> Path:
    """The folder of ``KafkaClientProbe.class``, compiled once per probe source into the cache (the probe needs
    only kafka-clients to compile, which ``provided`` holds)."""
    source = PROBE.read_bytes()
    folder = cache_dir() / "msk-iam-probe" / sha256(source).hexdigest()[:16]
    if (folder / "KafkaClientProbe.class").is_file():
        return folder
    javac = shutil.which("javac")
    if javac is None:
        raise MskIamRehearsalError("no `javac` on PATH: install a Java 17 JDK (e.g. openjdk-17-jdk-headless)")
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=_parent(folder)))
    try:
        done = subprocess.run([javac, "-nowarn", "-d", str(staging), "-cp", ":".join(str(p) for p in provided),
                               str(PROBE)], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                              timeout=PROBE_TIMEOUT_SECONDS)
        if done.returncode != 0:
            raise MskIamRehearsalError(f"compiling {PROBE.name} failed: {done.stderr.strip()[-600:]}")
        if not folder.exists():
            staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _parent(folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    return folder.parent


def classpath_finding(config: Mapping[str, str], jars: Sequence[Path], provided: Sequence[Path]) -> Finding:
    """Whether a Kafka client accepts ``config`` in a JVM with exactly ``jars`` and ``provided`` on its classpath
    (besides the probe's own class)."""
    java = shutil.which("java")
    if java is None:
        return Finding("MSK IAM classpath", False, "no `java` on PATH (install Java 17)")
    try:
        probe = compiled_probe(provided)
    except MskIamRehearsalError as exc:
        return Finding("MSK IAM classpath", False, str(exc))
    probe_config = {**config, "bootstrap.servers": PROBE_BOOTSTRAP}
    with tempfile.TemporaryDirectory(prefix="dataforge-msk-iam-") as tmp:
        properties = Path(tmp) / "client.properties"
        properties.write_text("".join(f"{key}={_escape(value)}\n" for key, value in sorted(probe_config.items())))
        classpath = ":".join(str(p) for p in [probe, *jars, *provided])
        command = [java, "-cp", classpath, "KafkaClientProbe", str(properties)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                                  timeout=PROBE_TIMEOUT_SECONDS, cwd=tmp)
        except subprocess.TimeoutExpired:
            return Finding("MSK IAM classpath", False, f"the probe did not finish in {PROBE_TIMEOUT_SECONDS} s")
    said = done.stdout.strip().splitlines()
    verdict = said[-1] if said else done.stderr.strip()[-300:]
    if done.returncode != 0 or not verdict.startswith("ok "):
        return Finding("MSK IAM classpath", False, verdict[:300])
    return Finding("MSK IAM classpath", True, f"{len(jars)} declared jars + kafka-clients {verdict[3:]}: login "
                                              "module and callback handler load, the consumer accepts the options")


def _escape(value: str) -> str:
    """A value as ``java.util.Properties.load`` reads it back (backslashes and a leading space escaped)."""
    escaped = value.replace("\\", "\\\\")
    return "\\" + escaped if escaped.startswith(" ") else escaped


def findings(rendered: Rendered, artifacts_dir: Path | None = None,
             provided: Sequence[Path] | None = None) -> list[Finding]:
    """Both checks for ``rendered``'s streaming job (see the module docstring)."""
    try:
        job = streaming_job(rendered)
        config = client_config(job)
        jars = declared_jars(rendered, job, artifacts_dir or artifacts.build_dir())
        beside = provided_jars() if provided is None else provided
    except DataForgeError as exc:  # a stack without the job, its jars or its settings: a failed check
        return [Finding("MSK IAM", False, str(exc))]
    return [options_finding(config), classpath_finding(config, jars, beside)]
