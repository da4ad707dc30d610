"""Offline plan and diff: render a stack's desired resources with Pulumi's mock engine and the
stack's real config (no credentials, no cloud calls), then print them as JSON, a summary table, or
a Markdown diff between two stacks or two git revisions.

The program rendered is ``infra.program.main``: the very function ``pulumi up`` runs. The mock
engine stands in for the Pulumi engine and the AWS provider only: it records each registration
(type, name, inputs, dependencies, protect), applies registered stack transforms as the engine
would, and answers with deterministic outputs (ids, ARNs, URLs) derived from the inputs.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml  # type: ignore[import-untyped, unused-ignore]

from infra.errors import RenderError

ACCOUNT_ID: Final = "123456789012"
PROJECT_FALLBACK: Final = "dataforge"
SECRET_PLACEHOLDER: Final = "[secret]"  # noqa: S105 - a placeholder, not a secret
BUCKET: Final = "aws:s3/bucket:Bucket"
WORKTREE: Final = "."  # "revision" meaning the working tree as it is


# --- stack config -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StackConfig:
    project: str
    stack: str
    values: dict[str, Any]  # full keys ("dataforge:lake"), decoded YAML values
    secret_keys: tuple[str, ...]


def load_stack_config(stack: str, root: Path, overrides: Mapping[str, Any] | None = None) -> StackConfig:
    """Project defaults from ``Pulumi.yaml`` overlaid with ``Pulumi.<stack>.yaml`` (and ``overrides``)."""
    project_file = root / "Pulumi.yaml"
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise RenderError(f"no stack file {stack_file.name} in {root}")
    project = yaml.safe_load(project_file.read_text()) if project_file.is_file() else {}
    name = str(project.get("name", PROJECT_FALLBACK))
    values: dict[str, Any] = {}
    for key, spec in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(spec, Mapping) and ("default" in spec or "value" in spec):
            values[full] = spec.get("default", spec.get("value"))
        elif not isinstance(spec, Mapping):
            values[full] = spec
    secrets: list[str] = []
    for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            value = SECRET_PLACEHOLDER
            secrets.append(full)
        values[full] = value
    for key, value in (overrides or {}).items():
        values[key] = value
    return StackConfig(project=name, stack=stack, values=values, secret_keys=tuple(sorted(secrets)))


def _wire(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


# --- rendered resources -----------------------------------------------------------------------


@dataclass(slots=True)
class Resource:
    """One registered resource: what ``dataforge plan`` prints and the policy checks read."""

    type: str
    name: str
    parent: str | None
    custom: bool
    protect: bool
    inputs: dict[str, Any]
    dependencies: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{self.type}::{self.name}"

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "parent": self.parent, "custom": self.custom,
                "protect": self.protect, "dependencies": self.dependencies, "inputs": self.inputs}


@dataclass(slots=True)
class Rendered:
    project: str
    stack: str
    resources: list[Resource]
    outputs: dict[str, Any]

    def of_type(self, type_token: str) -> list[Resource]:
        return [r for r in self.resources if r.type == type_token]

    def by_name(self, name: str) -> Resource:
        for resource in self.resources:
            if resource.name == name:
                return resource
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "stack": self.stack,
                "resources": [r.to_json() for r in self.resources], "outputs": self.outputs}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rendered:
        return cls(project=data["project"], stack=data["stack"], outputs=data["outputs"],
                   resources=[Resource(type=r["type"], name=r["name"], parent=r["parent"], custom=r["custom"],
                                       protect=r["protect"], inputs=r["inputs"], dependencies=r["dependencies"])
                              for r in data["resources"]])


def _normalize(value: Any) -> Any:
    """Make a deserialized property JSON-able and independent of the checkout's location."""
    import pulumi

    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in sorted(value.items()) if not str(k).startswith("__")}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    if isinstance(value, pulumi.FileAsset | pulumi.FileArchive):
        return {"asset": type(value).__name__, "file": Path(str(value.path)).name}
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return {"asset": type(value).__name__}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# --- the mock engine --------------------------------------------------------------------------


def _arn(token: str, name: str, physical: str, region: str) -> str:
    module = token.split(":")[1].split("/")[0]
    service = {"lambda": "lambda", "cloudwatch": "logs", "msk": "kafka", "ec2": "ec2", "lb": "elasticloadbalancing",
               "apigateway": "apigateway"}.get(module, module)
    kind = token.split(":")[1].split("/")[1].lower() if "/" in token else name
    kafka = f"arn:aws:kafka:{region}:{ACCOUNT_ID}"
    special = {
        "aws:s3/bucket:Bucket": f"arn:aws:s3:::{physical}",
        "aws:msk/serverlessCluster:ServerlessCluster": f"{kafka}:cluster/{physical}/mock-uuid",
        "aws:msk/cluster:Cluster": f"{kafka}:cluster/{physical}/mock-uuid",
        "aws:glue/catalogDatabase:CatalogDatabase": f"arn:aws:glue:{region}:{ACCOUNT_ID}:database/{physical}",
        "aws:cloudwatch/logGroup:LogGroup": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{physical}",
        "aws:dynamodb/table:Table": f"arn:aws:dynamodb:{region}:{ACCOUNT_ID}:table/{physical}",
        "aws:lambda/function:Function": f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{physical}",
        "aws:iam/role:Role": f"arn:aws:iam::{ACCOUNT_ID}:role/{physical}",
        "aws:sns/topic:Topic": f"arn:aws:sns:{region}:{ACCOUNT_ID}:{physical}",
        "aws:sqs/queue:Queue": f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{physical}",
    }
    return special.get(token, f"arn:aws:{service}:{region}:{ACCOUNT_ID}:{kind}/{physical}")


def _state(type_: str, name: str, inputs: dict[str, Any], region: str) -> tuple[str, dict[str, Any]]:
    physical = str(inputs.get("bucket") if type_ == BUCKET else
                   inputs.get("name") or inputs.get("clusterName") or inputs.get("functionName")
                   or inputs.get("serviceName") or inputs.get("dashboardName") or inputs.get("layerName")
                   or name)
    arn = _arn(type_, name, physical, region)
    state: dict[str, Any] = {**inputs, "arn": arn, "id": physical}
    state.setdefault("name", physical)
    extra: dict[str, dict[str, Any]] = {
        "aws:s3/bucket:Bucket": {"bucket": physical},
        "aws:lambda/function:Function": {
            "invokeArn": f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{arn}/invocations"},
        "aws:lambda/layerVersion:LayerVersion": {"arn": f"{arn}:1"},
        "aws:msk/serverlessCluster:ServerlessCluster": {
            "bootstrapBrokersSaslIam": f"boot-{physical}.kafka-serverless.{region}.amazonaws.com:9098"},
        "aws:msk/cluster:Cluster": {"bootstrapBrokersSaslIam": ",".join(
            f"b-{n}.{physical}.kafka.{region}.amazonaws.com:9098" for n in (1, 2))},
        "aws:sqs/queue:Queue": {"url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT_ID}/{physical}"},
        "aws:apigateway/restApi:RestApi": {"rootResourceId": f"{name}-root",
                                           "executionArn": f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{name}-id"},
        "aws:apigateway/stage:Stage": {"invokeUrl": f"https://{name}-id.execute-api.{region}.amazonaws.com/{inputs.get('stageName')}"},
        "aws:apigateway/apiKey:ApiKey": {"value": f"mock-api-key-{name}"},
        "aws:ecr/repository:Repository": {"repositoryUrl": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{physical}"},
        "aws:lb/loadBalancer:LoadBalancer": {"dnsName": f"{physical}.{region}.elb.amazonaws.com"},
        "aws:apprunner/service:Service": {"serviceUrl": f"{physical}.{region}.awsapprunner.com"},
        "aws:ec2/vpcEndpoint:VpcEndpoint": {"prefixListId": f"pl-{name}"},
        "aws:kms/key:Key": {"keyId": f"{name}-key-id"},
    }
    state.update(extra.get(type_, {}))
    return physical if type_ == BUCKET else f"{name}-id", state


def _engine(config: StackConfig) -> tuple[Any, Any]:
    """The mocks and the recording monitor (built lazily: importing pulumi is slow)."""
    import pulumi
    from pulumi.runtime.mocks import MockMonitor
    from pulumi.runtime.sync_await import _sync_await

    region = str(config.values.get("aws:region", "us-east-1"))

    class Mocks(pulumi.runtime.Mocks):
        def __init__(self) -> None:
            self.transforms: list[Any] = []
            self.inputs: dict[tuple[str, str], dict[str, Any]] = {}

        def register_transform(self, transform: Any) -> None:
            self.transforms.append(transform)

        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
            props = dict(args.inputs)
            for transform in self.transforms:  # what the engine does with stack transforms
                result = transform(pulumi.ResourceTransformArgs(custom=bool(args.custom), type_=args.typ,
                                                                name=args.name, props=props,
                                                                opts=pulumi.ResourceOptions()))
                if inspect.isawaitable(result):
                    result = _sync_await(result)
                if result is not None:
                    props = dict(result.props)
            self.inputs[(args.typ, args.name)] = props
            return _state(args.typ, args.name, props, region)

        def call(self, args: pulumi.runtime.MockCallArgs) -> Any:
            invoke = args.token
            if invoke == "aws:index/getCallerIdentity:getCallerIdentity":
                return {"accountId": ACCOUNT_ID, "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/plan",
                        "userId": "plan", "id": ACCOUNT_ID}
            if invoke == "aws:index/getRegion:getRegion":
                return {"name": region, "region": region, "id": region}
            raise RenderError(f"the offline renderer has no answer for invoke {args.token}")

    class Monitor(MockMonitor):
        def __init__(self, mocks: Mocks) -> None:
            super().__init__(mocks)
            self.registrations: list[dict[str, Any]] = []

        def RegisterResource(self, request: Any) -> Any:
            if request.type != "pulumi:pulumi:Stack":
                self.registrations.append({
                    "type": request.type, "name": request.name, "parent": request.parent,
                    "custom": bool(request.custom), "protect": bool(request.protect),
                    "dependencies": list(request.dependencies)})
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    mocks = Mocks()
    return mocks, Monitor(mocks)


def _urn_address(urn: str) -> str | None:
    if not urn:
        return None
    parts = urn.split("::")
    return f"{parts[2].split('$')[-1]}::{parts[3]}" if len(parts) >= 4 else urn


def render(stack: str, root: Path | None = None, overrides: Mapping[str, Any] | None = None) -> Rendered:
    """Run the program for ``stack`` under the mock engine and return what it registered."""
    import pulumi
    from pulumi.runtime import settings as runtime_settings
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from dataforge.paths import project_root
    from infra import program

    base = project_root() if root is None else root
    config = load_stack_config(stack, base, overrides)
    pulumi.runtime.set_all_config({k: _wire(v) for k, v in config.values.items()}, list(config.secret_keys))
    mocks, monitor = _engine(config)
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project=config.project, stack=stack, preview=False, monitor=monitor)
    try:
        _sync_await(run_pulumi_func(lambda: program.main(base)))
        root_resource = runtime_settings.get_root_resource()
        outputs_raw = getattr(root_resource, "outputs", {}) or {}
        outputs = _sync_await(pulumi.Output.from_input(outputs_raw).future(with_unknowns=False)) or {}
    except RenderError:
        raise
    except Exception as exc:
        raise RenderError(f"rendering stack {stack!r} failed: {exc}") from exc
    finally:
        with contextlib.suppress(Exception):
            from pulumi.runtime.settings import _shutdown_callbacks

            _sync_await(_shutdown_callbacks())  # type: ignore[no-untyped-call]
    resources = []
    for reg in monitor.registrations:
        inputs = mocks.inputs.get((reg["type"], reg["name"]), {}) if reg["custom"] else {}
        deps = sorted({a for a in (_urn_address(u) for u in reg["dependencies"]) if a})
        resources.append(Resource(type=reg["type"], name=reg["name"], parent=_urn_address(reg["parent"]),
                                  custom=reg["custom"], protect=reg["protect"], inputs=_normalize(inputs),
                                  dependencies=deps))
    resources.sort(key=lambda r: (r.type, r.name))
    secret_outputs = {"api_key"}
    shown = {k: (SECRET_PLACEHOLDER if k in secret_outputs else _normalize(v)) for k, v in sorted(outputs.items())}
    return Rendered(project=config.project, stack=stack, resources=resources, outputs=shown)


# --- summary ----------------------------------------------------------------------------------


def summary(rendered: Rendered) -> str:
    """A readable table: one row per resource under its component, then counts per type."""
    rows = [("component", "type", "name", "protect")]
    for r in rendered.resources:
        rows.append(((r.parent or "").split("::")[-1] or "-", r.type, r.name, "yes" if r.protect else ""))
    rows[1:] = sorted(rows[1:])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [f"stack {rendered.stack}: {len(rendered.resources)} resources", ""]
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if index == 0:
            lines.append("  ".join("-" * w for w in widths))
    counts: dict[str, int] = {}
    for r in rendered.resources:
        counts[r.type] = counts.get(r.type, 0) + 1
    lines += ["", "count  type"] + [f"{n:5d}  {t}" for t, n in sorted(counts.items())]
    return "\n".join(lines) + "\n"


# --- diff -------------------------------------------------------------------------------------


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, str) and value[:1] in "{[":
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    if isinstance(value, dict) and value:
        for key in sorted(value):
            yield from _flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _env_normalizer(envs: Sequence[str]) -> Any:
    alternatives = "|".join(re.escape(e) for e in sorted(set(envs)))
    pattern = re.compile(rf"(?<![A-Za-z0-9])({alternatives})(?![A-Za-z0-9])")

    def norm(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub("<env>", value)
        if isinstance(value, dict):
            return {k: norm(v) for k, v in value.items()}
        if isinstance(value, list):
            return [norm(v) for v in value]
        return value

    return norm


@dataclass(frozen=True, slots=True)
class Change:
    address: str
    properties: tuple[tuple[str, Any, Any], ...]  # path, before, after


@dataclass(frozen=True, slots=True)
class Diff:
    before: str
    after: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[Change, ...]
    outputs: tuple[tuple[str, Any, Any], ...]
    unchanged: int
    normalized_env: bool

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.outputs)


def _props(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(_flatten(dict(value)))


def _compare(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[tuple[str, Any, Any], ...]:
    fa, fb = _props(a), _props(b)
    return tuple((k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k))


def diff(before: Rendered, after: Rendered, label_before: str | None = None,
         label_after: str | None = None) -> Diff:
    """Resources added, removed and changed (with the changed properties) from ``before`` to ``after``.

    Comparing two different stacks, the stack names are normalized to ``<env>`` first so that the
    diff shows the configured differences, not every physical name."""
    normalize = before.stack != after.stack
    norm = _env_normalizer([before.stack, after.stack]) if normalize else (lambda v: v)
    a = {r.address: r for r in before.resources}
    b = {r.address: r for r in after.resources}
    changed = []
    unchanged = 0
    for address in sorted(set(a) & set(b)):
        ra, rb = a[address], b[address]
        view_a = {"inputs": norm(ra.inputs), "protect": ra.protect, "dependsOn": dict.fromkeys(ra.dependencies, True)}
        view_b = {"inputs": norm(rb.inputs), "protect": rb.protect, "dependsOn": dict.fromkeys(rb.dependencies, True)}
        props = _compare(view_a, view_b)
        if props:
            changed.append(Change(address, props))
        else:
            unchanged += 1
    return Diff(before=label_before or before.stack, after=label_after or after.stack,
                added=tuple(sorted(set(b) - set(a))), removed=tuple(sorted(set(a) - set(b))),
                changed=tuple(changed), outputs=_compare(norm(before.outputs), norm(after.outputs)),
                unchanged=unchanged, normalized_env=normalize)


def _cell(value: Any) -> str:
    if value is None:
        return "_(none)_"
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    text = text if len(text) <= 120 else text[:117] + "..."
    return "`" + text.replace("|", "\\|").replace("`", "'") + "`"


def markdown(d: Diff) -> str:
    """The diff as a pull-request comment."""
    lines = [f"## Stack diff: `{d.before}` → `{d.after}`", ""]
    if d.empty:
        return "\n".join([*lines, f"No changes ({d.unchanged} resources unchanged).", ""])
    lines.append(f"**{len(d.added)} to add, {len(d.changed)} to change, {len(d.removed)} to remove** "
                 f"({d.unchanged} unchanged).")
    if d.normalized_env:
        lines.append("")
        lines.append("_Stack names are shown as `<env>` so that only configured differences appear._")
    for title, items in (("Added", d.added), ("Removed", d.removed)):
        if items:
            lines += ["", f"### {title}", "", "| type | name |", "|---|---|"]
            lines += [f"| `{i.split('::')[0]}` | `{i.split('::', 1)[1]}` |" for i in items]
    if d.changed:
        lines += ["", "### Changed"]
        for change in d.changed:
            type_, name = change.address.split("::", 1)
            lines += ["", f"<details><summary><code>{name}</code> ({type_}): {len(change.properties)} "
                          f"propert{'y' if len(change.properties) == 1 else 'ies'}</summary>", "",
                      f"| property | {d.before} | {d.after} |", "|---|---|---|"]
            lines += [f"| `{path}` | {_cell(x)} | {_cell(y)} |" for path, x, y in change.properties]
            lines += ["", "</details>"]
    if d.outputs:
        lines += ["", "### Stack outputs", "", f"| output | {d.before} | {d.after} |", "|---|---|---|"]
        lines += [f"| `{path}` | {_cell(x)} | {_cell(y)} |" for path, x, y in d.outputs]
    return "\n".join(lines) + "\n"


# --- git revisions ----------------------------------------------------------------------------


def render_in_subprocess(stack: str, root: Path) -> Rendered:
    """Render ``stack`` of the checkout at ``root`` in a fresh interpreter (its own code and config)."""
    if not (root / "infra" / "render.py").is_file():
        if not (root / "infra" / "program.py").is_file():
            return Rendered(project=PROJECT_FALLBACK, stack=stack, resources=[], outputs={})
        raise RenderError(f"{root} has an infra/ program but no infra/render.py to render it with")
    with tempfile.TemporaryDirectory(prefix="dataforge-render-") as tmp:
        out = Path(tmp) / "plan.json"
        proc = subprocess.run([sys.executable, "-m", "infra.render", "--stack", stack, "--out", str(out)],
                              cwd=root, capture_output=True, text=True, check=False,
                              env={**_clean_env(), "PYTHONPATH": str(root)})
        if proc.returncode != 0:
            raise RenderError(f"rendering {stack} in {root} failed:\n{proc.stderr[-4000:]}")
        return Rendered.from_json(json.loads(out.read_text()))


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "AWS_"))}


@contextlib.contextmanager
def checkout(rev: str, repo: Path) -> Iterator[Path]:
    """A detached ``git worktree`` of ``rev`` (``.`` is the working tree itself), removed afterwards."""
    if rev == WORKTREE:
        yield repo
        return
    with tempfile.TemporaryDirectory(prefix="dataforge-rev-") as tmp:
        target = Path(tmp) / "tree"
        add = subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "--quiet", str(target), rev],
                             capture_output=True, text=True, check=False)
        if add.returncode != 0:
            raise RenderError(f"cannot check out {rev!r}: {add.stderr.strip()}")
        try:
            yield target
        finally:
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(target)],
                           capture_output=True, check=False)


def render_revision(stack: str, rev: str, repo: Path) -> Rendered:
    with checkout(rev, repo) as tree:
        return render_in_subprocess(stack, tree) if rev != WORKTREE else render(stack, tree)


def enable_bytecode_cache() -> None:
    """Let an entry point (CLI, bench, tests) cache compiled pulumi-aws modules under ``.cache``.

    pulumi-aws is thousands of modules; with ``PYTHONDONTWRITEBYTECODE`` set, every process would
    compile them again (tens of seconds). The cache goes to the project's ignored ``.cache``."""
    from dataforge.paths import cache_dir

    if sys.dont_write_bytecode or sys.pycache_prefix is None:
        sys.dont_write_bytecode = False
        sys.pycache_prefix = str(cache_dir() / "pycache")


# --- command line (also what a checkout at another revision is rendered with) ---------------------


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.render", description=__doc__)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--summary", action="store_true")
    ns = parser.parse_args(argv)
    enable_bytecode_cache()
    rendered = render(ns.stack)
    text = summary(rendered) if ns.summary else rendered.dumps()
    if ns.out:
        ns.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
