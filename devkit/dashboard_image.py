"""The dashboard's container image: its Dockerfile read as data, its content-derived tag, and the commands
that build it for arm64 and push it to the stack's ECR repository.

- ``Dockerfile.parse``: the instructions the rehearsal and the tag need (stages, ``ENV``, ``WORKDIR``,
  ``COPY``, ``EXPOSE``, ``CMD``), with Docker's line continuations and comments;
- ``context_files``: every build-context file the Dockerfile's ``COPY`` instructions take, minus what its
  ignore file (``<Dockerfile>.dockerignore``, which BuildKit reads for ``docker build -f <Dockerfile>``)
  excludes;
- ``image_tag``: ``src-`` + 24 hex digits of the SHA-256 of the platform, the Dockerfile, the ignore file
  and those files. The same sources give the same tag; any change to them gives another one. The ECR
  repository refuses to overwrite a tag (``IMMUTABLE``), so a tag names one image for good;
- ``first_deploy_targets``: on a fresh stack, the resources a first, targeted ``pulumi up`` creates so the
  repository exists before the image is pushed and the service is created;
- ``ImagePush``: the commands a deploying machine runs (``aws ecr``, ``docker buildx build --platform
  linux/arm64 --push``, ``pulumi config set``), run through an injected runner.

What the tag does not capture: the base image (``FROM python:3.11-slim-bookworm`` follows its tag on
Docker Hub) and what the build resolves at build time beyond ``uv.lock``'s pinned, hashed wheels.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from dataforge.errors import ServiceError
from infra.plan import Rendered
from infra.settings import DASHBOARD_IMAGE_TAG_DIGITS, DASHBOARD_IMAGE_TAG_PREFIX, NAMESPACE

DOCKERFILE: Final = Path("panel_dashboard/Dockerfile")
"""The dashboard's Dockerfile, relative to the build context (the repository root)."""
PLATFORM: Final = "linux/arm64"
"""The task definition's ``runtimePlatform`` (``ARM64``) as a build platform."""
_VARIABLE: Final = re.compile(r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_ECR_URL: Final = re.compile(r"^(?P<registry>\d{12}\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com)/(?P<name>.+)$")


class DockerfileError(ServiceError):
    """The Dockerfile (or its ignore file) uses a form this reader does not understand."""


@dataclass(frozen=True, slots=True)
class Copy:
    """One ``COPY``/``ADD``: its sources (build context paths, or paths of stage ``source_stage``)."""

    sources: tuple[str, ...]
    destination: str
    source_stage: str | None


@dataclass(slots=True)
class Stage:
    """One build stage: its base, the instructions the rehearsal and the tag read, in order."""

    base: str
    name: str | None
    env: list[tuple[str, str]] = field(default_factory=list)  # raw values, ``$VAR`` not yet expanded
    workdir: str = "/"
    copies: list[Copy] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)
    cmd: tuple[str, ...] = ()
    user: str | None = None

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """The stage's environment: ``base`` (the base image's), then each ``ENV`` in order, a value's
        ``$VAR``/``${VAR}`` expanded with the variables set before that instruction, as Docker does."""
        env = dict(base)
        for key, raw in self.env:
            env[key] = expand(raw, env)
        return env


def expand(value: str, env: Mapping[str, str]) -> str:
    """``$VAR`` and ``${VAR}`` replaced by their values in ``env`` (an unset variable is empty)."""
    return _VARIABLE.sub(lambda m: env.get(m.group("braced") or m.group("bare"), ""), value)


def _logical_lines(text: str) -> Iterator[str]:
    """Instructions with their continuation lines joined; comment lines dropped (also inside one)."""
    pending: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and pending):
            continue
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        line = " ".join(part for part in pending if part)
        pending = []
        if line:
            yield line
    if pending:
        raise DockerfileError("the Dockerfile ends inside a continued line")


def _env_pairs(rest: str) -> list[tuple[str, str]]:
    tokens = shlex.split(rest, posix=True)
    if tokens and "=" not in tokens[0]:  # the legacy form: ENV KEY value with spaces
        return [(tokens[0], " ".join(tokens[1:]))]
    pairs = []
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not key:
            raise DockerfileError(f"ENV {rest!r}: expected KEY=VALUE pairs")
        pairs.append((key, value))
    return pairs


def _copy(rest: str) -> Copy:
    tokens = json.loads(rest) if rest.startswith("[") else shlex.split(rest, posix=True)
    source_stage = None
    while tokens and str(tokens[0]).startswith("--"):
        flag = str(tokens.pop(0))
        if flag.startswith("--from="):
            source_stage = flag.partition("=")[2]
    if len(tokens) < 2:
        raise DockerfileError(f"COPY {rest!r}: expected sources and a destination")
    return Copy(sources=tuple(str(t) for t in tokens[:-1]), destination=str(tokens[-1]), source_stage=source_stage)


@dataclass(frozen=True, slots=True)
class Dockerfile:
    path: Path
    stages: tuple[Stage, ...]

    @property
    def final(self) -> Stage:
        """The stage the image is (the last one)."""
        return self.stages[-1]

    @property
    def ignore_file(self) -> Path:
        """BuildKit's Dockerfile-specific ignore file: ``<Dockerfile>.dockerignore`` beside it."""
        return self.path.with_name(self.path.name + ".dockerignore")

    @classmethod
    def parse(cls, path: Path) -> Dockerfile:
        stages: list[Stage] = []
        for line in _logical_lines(path.read_text()):
            keyword, _, rest = line.partition(" ")
            keyword, rest = keyword.upper(), rest.strip()
            if keyword == "FROM":
                words = rest.split()
                name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
                stages.append(Stage(base=words[0], name=name))
                continue
            if not stages:
                if keyword == "ARG":
                    continue
                raise DockerfileError(f"{path}: {keyword} before the first FROM")
            stage = stages[-1]
            if keyword == "ENV":
                stage.env.extend(_env_pairs(rest))
            elif keyword == "WORKDIR":
                stage.workdir = str(PurePosixPath(stage.workdir) / rest)
            elif keyword in ("COPY", "ADD"):
                stage.copies.append(_copy(rest))
            elif keyword == "EXPOSE":
                stage.exposed.extend(int(port.split("/")[0]) for port in rest.split())
            elif keyword == "USER":
                stage.user = rest
            elif keyword == "CMD":
                # Exec form is a JSON array; shell form runs under /bin/sh -c (Dockerfile reference, CMD).
                stage.cmd = tuple(json.loads(rest)) if rest.startswith("[") else ("/bin/sh", "-c", rest)
        if not stages:
            raise DockerfileError(f"{path}: no FROM")
        return cls(path=path, stages=tuple(stages))


def _pattern(pattern: str) -> re.Pattern[str]:
    """A ``.dockerignore`` pattern as a regular expression over a context-relative POSIX path: ``**``
    any number of folders, ``*`` and ``?`` within one path segment (Go's filepath.Match, as Docker)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def ignore_patterns(path: Path) -> list[re.Pattern[str]]:
    """The patterns of a ``.dockerignore`` file (none when it is absent); ``!`` exceptions are refused."""
    if not path.is_file():
        return []
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise DockerfileError(f"{path}: exception patterns ({line!r}) are not supported here")
        patterns.append(_pattern(str(PurePosixPath(line.lstrip("/")))))
    return patterns


def _ignored(relative: PurePosixPath, patterns: Sequence[re.Pattern[str]]) -> bool:
    candidates = [str(relative), *(str(parent) for parent in relative.parents if str(parent) != ".")]
    return any(p.fullmatch(c) for p in patterns for c in candidates)


def context_files(dockerfile: Dockerfile, context: Path) -> list[PurePosixPath]:
    """Every file the Dockerfile's context ``COPY``/``ADD`` instructions take (all stages), relative to the
    build context, sorted, minus what its ignore file excludes."""
    patterns = ignore_patterns(dockerfile.ignore_file)
    found: set[PurePosixPath] = set()
    for stage in dockerfile.stages:
        for copy in stage.copies:
            if copy.source_stage is not None:
                continue
            for source in copy.sources:
                matches = sorted(context.glob(source)) if any(c in source for c in "*?[") else [context / source]
                for match in matches:
                    if not match.exists():
                        raise DockerfileError(f"COPY {source}: not in the build context {context}")
                    files = [match] if match.is_file() else sorted(p for p in match.rglob("*") if p.is_file())
                    for file in files:
                        relative = PurePosixPath(file.relative_to(context).as_posix())
                        if not _ignored(relative, patterns):
                            found.add(relative)
    return sorted(found)


def image_tag(context: Path, dockerfile: Path = DOCKERFILE, platform: str = PLATFORM) -> str:
    """The content-derived tag of the image ``dockerfile`` builds from ``context`` for ``platform``."""
    parsed = Dockerfile.parse(context / dockerfile)
    digest = hashlib.sha256(f"platform\0{platform}\n".encode())
    digest.update(b"dockerfile\0" + parsed.path.read_bytes() + b"\n")
    if parsed.ignore_file.is_file():
        digest.update(b"ignore\0" + parsed.ignore_file.read_bytes() + b"\n")
    for relative in context_files(parsed, context):
        content = hashlib.sha256((context / relative).read_bytes()).hexdigest()
        digest.update(f"file\0{relative}\0{content}\n".encode())
    return DASHBOARD_IMAGE_TAG_PREFIX + digest.hexdigest()[:DASHBOARD_IMAGE_TAG_DIGITS]


@dataclass(frozen=True, slots=True)
class Repository:
    """An ECR repository URL split into what the commands need."""

    url: str
    registry: str
    region: str
    name: str

    @classmethod
    def parse(cls, url: str) -> Repository:
        match = _ECR_URL.fullmatch(url.strip())
        if match is None:
            raise ServiceError(f"{url!r} is not an ECR repository URL "
                               "(<account>.dkr.ecr.<region>.amazonaws.com/<name>)")
        return cls(url=url.strip(), registry=match["registry"], region=match["region"], name=match["name"])


REPOSITORY_RESOURCE: Final = "aws:ecr/repository:Repository::dashboard-repo"
"""The stack's dashboard repository (``infra.components.dashboard``), as ``type::name``."""


def first_deploy_targets(rendered: Rendered, resource: str = REPOSITORY_RESOURCE) -> list[str]:
    """The URNs a first ``pulumi up --target ...`` creates so that the repository exists before the image is
    pushed and before the service asks for it: the repository, what it depends on (the KMS key), and
    their parent components, each as ``urn:pulumi:<stack>::<project>::<parent types$...$type>::<name>``."""
    by_address = {r.address: r for r in rendered.resources}

    def qualified_type(address: str) -> str:
        resource = by_address[address]
        parent = resource.parent
        if parent is None or parent.startswith("pulumi:pulumi:Stack::"):
            return resource.type
        return f"{qualified_type(parent)}${resource.type}"

    wanted: set[str] = set()
    pending = [resource]
    while pending:
        address = pending.pop()
        if address in wanted or address not in by_address:
            continue
        wanted.add(address)
        current = by_address[address]
        pending.extend(current.dependencies)
        if current.parent and not current.parent.startswith("pulumi:pulumi:Stack::"):
            pending.append(current.parent)
    if resource not in wanted:
        raise ServiceError(f"stack {rendered.stack!r} declares no {resource}")
    return sorted(f"urn:pulumi:{rendered.stack}::{rendered.project}::{qualified_type(a)}::{by_address[a].name}"
                  for a in wanted)


def build_command(repository: Repository, tag: str, context: Path, *, push: bool, dockerfile: Path = DOCKERFILE,
                  platform: str = PLATFORM) -> list[str]:
    """``docker buildx build`` of the image for ``platform`` from ``context`` (the repository root), tagged
    ``<repository>:<tag>``; ``--push`` sends it to ECR, otherwise ``--load`` keeps it in the local store.
    ``--provenance=false``: the tag then names the image manifest itself, not an index with an attestation."""
    return ["docker", "buildx", "build", "--platform", platform, "--file", str(context / dockerfile),
            "--tag", f"{repository.url}:{tag}", "--provenance=false", "--push" if push else "--load", str(context)]


Runner = Callable[[Sequence[str], str | None], "subprocess.CompletedProcess[str]"]
"""Runs a command (with optional stdin text) and returns its completed process (never raises on status)."""


def run_command(command: Sequence[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The default runner: the command in the foreground, output captured as text."""
    try:
        return subprocess.run(list(command), input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise ServiceError(f"{command[0]!r} is not installed (needed to build and push the dashboard image)") from exc


@dataclass(frozen=True, slots=True)
class ImagePush:
    """Build the dashboard image for arm64, push it under its content-derived tag unless ECR already holds
    that tag, and record the tag in the stack's settings."""

    stack: str
    repository: Repository
    tag: str
    root: Path

    def exists_command(self) -> list[str]:
        return ["aws", "ecr", "describe-images", "--region", self.repository.region, "--repository-name",
                self.repository.name, "--image-ids", f"imageTag={self.tag}", "--output", "json"]

    def password_command(self) -> list[str]:
        return ["aws", "ecr", "get-login-password", "--region", self.repository.region]

    def login_command(self) -> list[str]:
        return ["docker", "login", "--username", "AWS", "--password-stdin", self.repository.registry]

    def push_command(self) -> list[str]:
        return build_command(self.repository, self.tag, self.root, push=True)

    def config_command(self) -> list[str]:
        return ["pulumi", "config", "set", "--path", f"{NAMESPACE}:dashboard.imageTag", self.tag,
                "--stack", self.stack]

    def plan(self) -> list[list[str]]:
        """Every command ``run`` may run, in order (for printing)."""
        return [self.exists_command(), self.password_command(), self.login_command(), self.push_command(),
                self.config_command()]

    def run(self, runner: Runner = run_command, log: Callable[[str], None] = print) -> bool:
        """Push unless ECR holds the tag already; set the stack's tag. True when an image was pushed."""
        pushed = False
        if runner(self.exists_command(), None).returncode == 0:
            log(f"{self.repository.url}:{self.tag} is in ECR already (immutable tag): not rebuilding")
        else:
            password = self._check(runner(self.password_command(), None), "aws ecr get-login-password").stdout
            self._check(runner(self.login_command(), password), "docker login")
            log(f"building and pushing {self.repository.url}:{self.tag} for {PLATFORM}")
            self._check(runner(self.push_command(), None), "docker buildx build")
            pushed = True
        self._check(runner(self.config_command(), None), "pulumi config set")
        log(f"{NAMESPACE}:dashboard.imageTag = {self.tag} in Pulumi.{self.stack}.yaml; `pulumi up --stack "
            f"{self.stack}` deploys it")
        return pushed

    @staticmethod
    def _check(done: subprocess.CompletedProcess[str], what: str) -> subprocess.CompletedProcess[str]:
        if done.returncode != 0:
            raise ServiceError(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout)[-2000:]}")
        return done
