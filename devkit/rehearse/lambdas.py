"""A Lambda function run the way the Python 3.11 runtime runs it: from its zip and its layers, in a clean
process, with the declared handler and environment.

Lambda extracts the function's zip into ``/var/task`` and its layers, in order, into ``/opt``; the
runtime's import path is the function code, then the layers' ``python/lib/python3.11/site-packages``
and ``python``, then the runtime's own packages (boto3 and botocore with their dependencies), and it
imports the module named by the handler string once per execution environment (AWS Lambda developer
guide: "Working with .zip file archives for Python Lambda functions", dependency search path; "Packaging
your layer content", layer paths). ``Sandbox`` lays out the same folders under a temporary directory;
``invoke`` starts ``python -S -I`` (no site, no user packages, no checkout on the path: only those
folders) with the function's declared environment plus what Lambda sets itself, imports the handler and
feeds it the events one after the other, as one warm execution environment would.

Not rehearsed: the arm64 instruction set (the layer is installed for x86-64 from the same lock and the
same sources, and ``same_packages`` checks both hold the same distributions at the same versions), the
Amazon Linux system libraries, memory and time limits, and the Lambda service's own retries.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from dataforge.errors import ServiceError
from infra.plan import Rendered

RUNTIME_PACKAGES: Final = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
"""What the Python 3.11 runtime provides beside the standard library: the AWS SDK and its dependencies."""
INVOKE_TIMEOUT_SECONDS: Final = 300.0

# Runs in the clean process: the Lambda import path, the handler string, one invocation per event.
_BOOTSTRAP: Final = r"""
import importlib, json, os, sys, time, traceback, uuid
task, opt, runtime, events_path, out_path = sys.argv[1:6]
sys.path[:0] = [task, os.path.join(opt, "python", "lib", "python3.11", "site-packages"),
                os.path.join(opt, "python"), runtime]
os.chdir(task)


class Context:
    def __init__(self):
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = int(os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"])
        self.invoked_function_arn = os.environ["DATAFORGE_REHEARSAL_FUNCTION_ARN"]
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self._deadline = time.monotonic() + float(os.environ["DATAFORGE_REHEARSAL_TIMEOUT"])

    def get_remaining_time_in_millis(self):
        return max(0, int((self._deadline - time.monotonic()) * 1000))


module_name, _, attribute = os.environ["_HANDLER"].rpartition(".")
results = []
try:
    handler = getattr(importlib.import_module(module_name), attribute)
except Exception as exc:
    results.append({"ok": False, "phase": "init", "error": type(exc).__name__, "message": str(exc),
                    "traceback": traceback.format_exc()})
else:
    with open(events_path) as f:
        events = json.load(f)
    for event in events:
        try:
            results.append({"ok": True, "result": handler(event, Context())})
        except Exception as exc:
            results.append({"ok": False, "phase": "invoke", "error": type(exc).__name__, "message": str(exc),
                            "traceback": traceback.format_exc()})
    loaded = sorted({name.split(".")[0] for name in sys.modules})
    results.append({"loaded": loaded, "path": sys.path})
with open(out_path, "w") as f:
    json.dump(results, f, default=str)
"""


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """What the stack declares about one function."""

    address: str
    name: str
    arn: str
    handler: str
    runtime: str
    architectures: tuple[str, ...]
    memory_mb: int
    timeout_seconds: int
    environment: Mapping[str, str]
    code: Path
    layers: tuple[Path, ...]


def _layer_file(rendered: Rendered, arn: str, artifacts_dir: Path) -> Path:
    """The artifact of the layer version ``arn`` names (``...:layer:<name>:<version>``; the offline
    renderer's mock ARNs say ``layerversion/<name>``)."""
    match = re.search(r"(?::layer:|:layerversion/)([^:/]+)", arn)
    name = match.group(1) if match else arn
    for layer in rendered.of_type("aws:lambda/layerVersion:LayerVersion"):
        if layer.inputs.get("layerName") == name:
            return artifacts_dir / str(layer.inputs["code"]["file"])
    raise ServiceError(f"layer {arn} is not declared by the stack")


def function_specs(rendered: Rendered, artifacts_dir: Path) -> list[FunctionSpec]:
    """Every Lambda function the rendered stack declares, with its artifact files."""
    specs = []
    region, account = _region_account(rendered)
    for resource in rendered.of_type("aws:lambda/function:Function"):
        inputs = resource.inputs
        name = inputs["name"]
        specs.append(FunctionSpec(
            address=resource.address, name=name, arn=f"arn:aws:lambda:{region}:{account}:function:{name}",
            handler=inputs["handler"], runtime=inputs["runtime"],
            architectures=tuple(inputs.get("architectures") or ("x86_64",)),
            memory_mb=int(inputs.get("memorySize", 128)), timeout_seconds=int(inputs.get("timeout", 3)),
            environment=dict((inputs.get("environment") or {}).get("variables") or {}),
            code=artifacts_dir / inputs["code"]["file"],
            layers=tuple(_layer_file(rendered, arn, artifacts_dir) for arn in inputs.get("layers") or ())))
    return specs


def _region_account(rendered: Rendered) -> tuple[str, str]:
    """The region and account of the stack's ARNs (the mock engine's account when rendered offline)."""
    for resource in rendered.of_type("aws:lambda/function:Function"):
        parts = str(resource.inputs.get("kmsKeyArn") or resource.inputs.get("role") or "").split(":")
        if len(parts) > 4 and parts[4].isdigit():
            return parts[3] or "us-east-1", parts[4]
    return "us-east-1", "123456789012"


def stack_account(rendered: Rendered) -> str:
    return _region_account(rendered)[1]


@dataclass(slots=True)
class Sandbox:
    """One function's execution environment on disk: ``task`` (the zip), ``opt`` (the layers), and
    ``runtime`` (the runtime's own packages)."""

    spec: FunctionSpec
    root: Path
    task: Path = field(init=False)
    opt: Path = field(init=False)
    runtime: Path = field(init=False)

    def __post_init__(self) -> None:
        self.task, self.opt, self.runtime = self.root / "var" / "task", self.root / "opt", self.root / "runtime"


def _extract(archive: Path, into: Path) -> None:
    if not archive.is_file():
        raise ServiceError(f"artifact {archive} is missing: render the stack first (dataforge plan)")
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(into)


def install(spec: FunctionSpec, root: Path, layers: Sequence[Path] | None = None) -> Sandbox:
    """Lay out ``spec``'s execution environment under ``root``: the zip in ``var/task``, each layer in
    order in ``opt`` (``layers`` replaces the declared ones, e.g. by their x86-64 twins), and the
    runtime's packages in ``runtime`` (links to this interpreter's)."""
    sandbox = Sandbox(spec, root)
    shutil.rmtree(root, ignore_errors=True)
    _extract(spec.code, sandbox.task)
    sandbox.opt.mkdir(parents=True)
    for layer in spec.layers if layers is None else layers:
        _extract(layer, sandbox.opt)
    sandbox.runtime.mkdir(parents=True)
    site = Path(sysconfig.get_paths()["purelib"])
    for package in RUNTIME_PACKAGES:
        for source in (site / package, site / f"{package}.py"):
            if source.exists():
                (sandbox.runtime / source.name).symlink_to(source, target_is_directory=source.is_dir())
                break
        else:
            raise ServiceError(f"{package} is not installed here: run `make setup`")
    return sandbox


def lambda_environment(spec: FunctionSpec, overrides: Mapping[str, str]) -> dict[str, str]:
    """The declared environment, what Lambda sets for every function, and ``overrides`` (the AWS
    endpoint and credentials of the embedded platform)."""
    region = spec.arn.split(":")[3]
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC",
        "_HANDLER": spec.handler, "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_LAMBDA_FUNCTION_NAME": spec.name, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}", "AWS_LAMBDA_LOG_STREAM_NAME": "rehearsal",
        "AWS_REGION": region, "AWS_DEFAULT_REGION": region,
        "DATAFORGE_REHEARSAL_FUNCTION_ARN": spec.arn, "DATAFORGE_REHEARSAL_TIMEOUT": str(spec.timeout_seconds),
        **spec.environment,
    }
    env.update(overrides)
    return env


@dataclass(frozen=True, slots=True, order=True)
class EmittedMetric:
    """One metric a function printed in CloudWatch embedded metric format: its namespace, name and one
    of its dimension sets (name -> value)."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]

    def matches(self, namespace: str, name: str, dimensions: Mapping[str, str]) -> bool:
        """Whether an alarm on ``namespace``/``name`` with exactly ``dimensions`` sees this metric
        (CloudWatch treats each combination of dimensions as a separate metric)."""
        return (self.namespace, self.name, self.dimensions) == (namespace, name, tuple(sorted(dimensions.items())))


def emitted_metrics(stdout: str) -> list[EmittedMetric]:
    """The metrics of every EMF line in ``stdout``. Lambda sends a function's stdout to CloudWatch Logs,
    which extracts a metric from each JSON line whose ``_aws.CloudWatchMetrics`` directive lists it,
    once per dimension set, with the dimension values read from the line's top-level keys (CloudWatch
    User Guide, "Embedded metric format specification"); Powertools prints one such line per flush."""
    found: set[EmittedMetric] = set()
    for line in stdout.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            document = json.loads(line)
        except json.JSONDecodeError:
            continue
        directives = document.get("_aws", {}).get("CloudWatchMetrics", []) if isinstance(document, dict) else []
        for directive in directives:
            for dimension_set in directive.get("Dimensions") or [[]]:
                dimensions = tuple(sorted((key, str(document.get(key))) for key in dimension_set))
                for metric in directive.get("Metrics") or []:
                    found.add(EmittedMetric(directive["Namespace"], metric["Name"], dimensions))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class Invocations:
    """What one execution environment answered: one entry per event (``ok`` and ``result``, or the
    error), the top-level modules the process had loaded and its import path, and what it printed
    (stdout carries Powertools' EMF lines and logs, as Lambda would send them to CloudWatch Logs)."""

    results: list[dict[str, Any]]
    loaded: list[str]
    path: list[str]
    stderr: str
    stdout: str = ""

    @property
    def init_error(self) -> dict[str, Any] | None:
        return next((r for r in self.results if r.get("phase") == "init"), None)

    @property
    def metrics(self) -> list[EmittedMetric]:
        """The EMF metrics the process printed."""
        return emitted_metrics(self.stdout)


def invoke(sandbox: Sandbox, events: Sequence[Mapping[str, Any]], overrides: Mapping[str, str]) -> Invocations:
    """Import the handler in a clean Python process laid out as ``sandbox`` and invoke it with
    ``events``, in order."""
    events_path, out_path = sandbox.root / "events.json", sandbox.root / "results.json"
    events_path.write_text(json.dumps(list(events)))
    out_path.unlink(missing_ok=True)
    command = [sys.executable, "-S", "-I", "-c", _BOOTSTRAP, str(sandbox.task), str(sandbox.opt),
               str(sandbox.runtime), str(events_path), str(out_path)]
    completed = subprocess.run(command, env=lambda_environment(sandbox.spec, overrides), capture_output=True,
                               text=True, timeout=INVOKE_TIMEOUT_SECONDS, check=False, cwd=sandbox.task)
    if not out_path.is_file():
        raise ServiceError(f"{sandbox.spec.name}: the runtime process failed (exit {completed.returncode}):\n"
                           f"{completed.stderr[-4000:]}")
    results: list[dict[str, Any]] = json.loads(out_path.read_text())
    tail = results[-1] if results and "loaded" in results[-1] else {"loaded": [], "path": []}
    return Invocations([r for r in results if "loaded" not in r], tail["loaded"], tail["path"], completed.stderr,
                       completed.stdout)


def same_packages(arm64: Path, twin: Path) -> list[str]:
    """Differences between two layer zips' third-party distributions (name and version); empty when
    both hold the same packages at the same versions."""
    def distributions(archive: Path) -> dict[str, str]:
        with zipfile.ZipFile(archive) as zipped:
            names = {n.split("/")[1] for n in zipped.namelist() if n.startswith("python/") and n.count("/") >= 2}
        found = {}
        for name in names:
            if name.endswith(".dist-info"):
                dist, _, version = name.removesuffix(".dist-info").partition("-")
                found[dist.lower().replace("_", "-")] = version
        return found

    left, right = distributions(arm64), distributions(twin)
    return [f"{name}: arm64 {left.get(name)} vs x86-64 {right.get(name)}"
            for name in sorted(set(left) | set(right)) if left.get(name) != right.get(name)]


